//! OTLP over HTTP (hyper; HTTP/1.1 and h2c): `POST /v1/traces|metrics|logs`.
//!
//! The request path, in order: route (404) → method (405, `Allow: POST`) → `Content-Type`
//! (`application/x-protobuf` or `application/json`, else 415) → `Content-Encoding` (gzip, zstd,
//! deflate, snappy, identity; else 415) → body read under `max_request_body_size` (413) →
//! decompression under the same cap (413; corrupt → 400) → decode (400) → pipelines. Answers are
//! in the request's encoding: an `Export*ServiceResponse` (with `partial_success` when items were
//! rejected) or a `google.rpc.Status`. Overload is 429 with `Retry-After` (never 500 or a bare
//! 503); a stopping gateway answers 503 with `Retry-After`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;

use super::decode::{check_or_decode, decompress, ContentEncoding, DecodeError, PayloadEncoding};
use super::intake::{request_meta, Intake};
use super::HttpServerConfig;
use super::ReceiverContext;
use crate::admission::{Cost, MemoryGate};
use crate::data::{Payload, Signal};
use crate::grpc::status::{code, rpc_status, status_json};
use crate::net::{Edge, Peer};

struct State {
    gate: Option<Arc<MemoryGate>>,
    routes: Vec<(String, Intake)>,
    /// Paths of signals no pipeline takes from this receiver: 404 with a clear message.
    unrouted: Vec<(String, Signal)>,
    cap: usize,
    include_metadata: bool,
    /// `read_timeout`: time to read a body once its head arrived.
    read_timeout: Option<Duration>,
}

type Body = Full<Bytes>;

fn respond(status: StatusCode, enc: PayloadEncoding, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(enc.content_type()),
    );
    r
}

/// A `google.rpc.Status` error in the given encoding.
fn error(
    status: StatusCode,
    enc: PayloadEncoding,
    grpc_code: i32,
    message: &str,
    retry: Option<Duration>,
) -> Response<Body> {
    let body = match enc {
        PayloadEncoding::Json => status_json(grpc_code, message, retry),
        PayloadEncoding::Protobuf => rpc_status(grpc_code, message, retry).encode_to_vec(),
    };
    let mut r = respond(status, enc, body);
    if let Some(d) = retry {
        let secs = d.as_secs_f64().ceil().max(1.0) as u64;
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

fn success(signal: Signal, enc: PayloadEncoding, rejected: u64, message: String) -> Response<Body> {
    if enc == PayloadEncoding::Json {
        // Written by hand: OTLP/JSON carries int64 as a decimal string, and an empty response
        // is `{}`, not `{"partialSuccess":null}`.
        let body = if rejected == 0 {
            b"{}".to_vec()
        } else {
            let field = match signal {
                Signal::Traces => "rejectedSpans",
                Signal::Metrics => "rejectedDataPoints",
                Signal::Logs => "rejectedLogRecords",
            };
            serde_json::to_vec(&serde_json::json!({
                "partialSuccess": { field: rejected.to_string(), "errorMessage": message }
            }))
            .unwrap_or_default()
        };
        return respond(StatusCode::OK, enc, body);
    }
    let rejected = rejected as i64;
    let body = match signal {
        Signal::Traces => {
            let r = ExportTraceServiceResponse {
                partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: message,
                }),
            };
            r.encode_to_vec()
        }
        Signal::Metrics => {
            let r = ExportMetricsServiceResponse {
                partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: rejected,
                    error_message: message,
                }),
            };
            r.encode_to_vec()
        }
        Signal::Logs => {
            let r = ExportLogsServiceResponse {
                partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: message,
                }),
            };
            r.encode_to_vec()
        }
    };
    respond(StatusCode::OK, enc, body)
}

fn decode_error_response(e: &DecodeError, enc: PayloadEncoding) -> Response<Body> {
    let status = match e {
        DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        DecodeError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, enc, code::INVALID_ARGUMENT, &e.to_string(), None)
}

/// Reads and discards what is left of a refused request's body (bounded in bytes and time), so
/// the client reads our answer instead of a connection reset ("lingering close").
fn discard(body: Incoming, limit: usize) {
    tokio::spawn(async move {
        let drain = async {
            let mut body = body;
            let mut seen = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map(|d| d.len()).unwrap_or(0);
                if seen > limit {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    });
}

/// The largest body we read only to throw away before answering an error.
const LINGER_LIMIT: usize = 64 << 20;

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let Some(intake) = state
        .routes
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, s)| s.clone())
    else {
        let msg = match state.unrouted.iter().find(|(p, _)| p == path) {
            Some((_, s)) => format!("no pipeline takes {s} from this receiver"),
            None => {
                format!("unknown path {path:?}; OTLP paths are /v1/traces, /v1/metrics, /v1/logs")
            }
        };
        discard(body, LINGER_LIMIT);
        return error(
            StatusCode::NOT_FOUND,
            PayloadEncoding::Json,
            code::UNIMPLEMENTED,
            &msg,
            None,
        );
    };
    let ct = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let enc_guess = PayloadEncoding::from_content_type(ct).unwrap_or(PayloadEncoding::Json);
    if parts.method != Method::POST {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            enc_guess,
            code::INVALID_ARGUMENT,
            &format!("method {} not allowed; use POST", parts.method),
            None,
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        intake.count_bad_request();
        discard(body, LINGER_LIMIT);
        return r;
    }
    let Some(enc) = PayloadEncoding::from_content_type(ct) else {
        intake.count_bad_request();
        discard(body, LINGER_LIMIT);
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadEncoding::Json,
            code::INVALID_ARGUMENT,
            &format!(
                "unsupported content type {:?}; use application/x-protobuf or application/json",
                ct.unwrap_or("")
            ),
            None,
        );
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // a body declared over the cap is a 413 whatever the memory: retrying will not help
    let cap = state.cap;
    if declared.is_some_and(|n| n > cap as u64) {
        intake.count_bad_request();
        discard(body, LINGER_LIMIT);
        return decode_error_response(&DecodeError::TooLarge { limit: cap }, enc);
    }
    // Admission before reading: under memory pressure the body is never read into memory. The
    // ticket holds the request's expected size (declared, or as recent requests inflated,
    // never more than the cap) until it is answered.
    let mut _ticket = None;
    if let Some(gate) = &state.gate {
        let expected = declared
            .unwrap_or(0)
            .max(gate.expected_request())
            .min(cap as u64);
        match gate.admit(expected) {
            Ok(t) => _ticket = Some(t),
            Err(retry_after) => {
                intake.count_refused_request();
                discard(body, LINGER_LIMIT);
                return error(
                    StatusCode::TOO_MANY_REQUESTS,
                    enc,
                    code::RESOURCE_EXHAUSTED,
                    "memory limit reached; retry later",
                    Some(retry_after),
                );
            }
        }
    }
    let ce = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let content_encoding = match ContentEncoding::parse(ce) {
        Ok(c) => c,
        Err(e) => {
            intake.count_bad_request();
            discard(body, LINGER_LIMIT);
            return decode_error_response(&e, enc);
        }
    };
    let mut meta = request_meta(
        parts.extensions.get::<Peer>(),
        state.include_metadata.then_some(&parts.headers),
    );
    let read = read_capped(body, cap, declared);
    let read = match state.read_timeout {
        None => read.await,
        Some(t) => match tokio::time::timeout(t, read).await {
            Ok(r) => r,
            Err(_) => {
                intake.count_bad_request();
                return error(
                    StatusCode::REQUEST_TIMEOUT,
                    enc,
                    code::DEADLINE_EXCEEDED,
                    "request body not received within read_timeout",
                    None,
                );
            }
        },
    };
    let body = match read {
        Ok(b) => b,
        Err(resp) => {
            intake.count_bad_request();
            return resp(enc);
        }
    };
    let _body_held = state
        .gate
        .as_ref()
        .map(|g| g.hold(Cost::Bytes(body.len() as u64)));
    meta.wire_size = body.len() as u64;
    let reads_items = intake.reads_items();
    let mut _raw_held = None;
    let decoded = match content_encoding {
        ContentEncoding::Identity => check_or_decode(intake.signal, enc, body.clone(), reads_items),
        other => decompress(other, &body, cap).and_then(|mut raw| {
            if !reads_items && raw.capacity() > raw.len() + raw.len() / 4 {
                // the inflated bytes may be forwarded and queued: no growth slack with them
                raw.shrink_to_fit();
            }
            meta.wire_size = raw.len() as u64;
            _raw_held = state
                .gate
                .as_ref()
                .map(|g| g.hold(Cost::Bytes(raw.len() as u64)));
            check_or_decode(intake.signal, enc, Bytes::from(raw), reads_items)
        }),
    };
    let data = match decoded {
        Ok(d) => d,
        Err(e) => {
            intake.count_bad_request();
            tracing::debug!(error = %e, kind = e.kind(), "rejected otlp/http request");
            return decode_error_response(&e, enc);
        }
    };
    if let Some(g) = &state.gate {
        g.note_request(meta.wire_size);
    }
    // the encoded request is already on the account (the body or the inflated bytes)
    let _decoded_held = match &data {
        Payload::Decoded(_) => state
            .gate
            .as_ref()
            .map(|g| g.hold(data.cost(meta.wire_size))),
        Payload::Encoded(_) => None,
    };
    match intake.receive(data, Arc::new(meta)).await.answer() {
        Ok((rejected, message)) => success(intake.signal, enc, rejected, message),
        Err(r) => error(r.http, enc, r.grpc, &r.message, r.retry_after),
    }
}

type ErrorResponder = Box<dyn FnOnce(PayloadEncoding) -> Response<Body> + Send>;

/// Reads at most `cap` bytes of body; past the cap the rest is discarded in the background and
/// the answer is 413.
/// Reads the body into one buffer of at most `cap` bytes. With a `Content-Length` the buffer is
/// allocated once at that size: a forwarded body lives on in the exporter queues, so it should
/// not drag the slack of a doubling buffer along.
async fn read_capped(
    mut body: Incoming,
    cap: usize,
    declared: Option<u64>,
) -> Result<Bytes, ErrorResponder> {
    let mut buf = bytes::BytesMut::with_capacity(declared.unwrap_or(0).min(cap as u64) as usize);
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                let msg = format!("cannot read body: {e}");
                return Err(Box::new(move |enc| {
                    error(
                        StatusCode::BAD_REQUEST,
                        enc,
                        code::INVALID_ARGUMENT,
                        &msg,
                        None,
                    )
                }));
            }
        };
        if let Some(d) = frame.data_ref() {
            if buf.len() + d.len() > cap {
                discard(body, LINGER_LIMIT);
                return Err(Box::new(move |enc| {
                    decode_error_response(&DecodeError::TooLarge { limit: cap }, enc)
                }));
            }
            buf.extend_from_slice(d);
        }
    }
    Ok(buf.freeze())
}

/// Starts the HTTP server on an already bound listener; resolves when `stop` fires and open
/// connections have finished their in-flight requests.
pub fn serve(
    cfg: &HttpServerConfig,
    ctx: &ReceiverContext,
    edge: Edge,
    listener: TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let id = ctx.id.to_string();
    let mut routes = Vec::new();
    let mut unrouted = Vec::new();
    for (signal, path) in [
        (Signal::Traces, &cfg.traces_url_path),
        (Signal::Metrics, &cfg.metrics_url_path),
        (Signal::Logs, &cfg.logs_url_path),
    ] {
        let f = ctx.fanout(signal);
        if f.is_empty() {
            unrouted.push((path.clone(), signal));
        } else {
            routes.push((
                path.clone(),
                Intake::new(&ctx.registry, &id, "http", signal, f.clone()),
            ));
        }
    }
    let state = Arc::new(State {
        gate: ctx.gate.clone(),
        routes,
        unrouted,
        cap: cfg.max_request_body_size.bytes().min(usize::MAX as u64) as usize,
        include_metadata: cfg.include_metadata,
        read_timeout: (!cfg.read_timeout.is_zero()).then(|| cfg.read_timeout.get()),
    });
    crate::net::serve(edge, listener, stop, move |_peer| {
        let state = state.clone();
        hyper::service::service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(req, state).await) }
        })
    })
}
