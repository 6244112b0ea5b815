//! OTLP over gRPC (tonic): `TraceService`, `MetricsService`, `LogsService` `Export`.
//!
//! Only the services of signals that some pipeline takes from this receiver are registered;
//! the others answer `UNIMPLEMENTED`. gzip, zstd and deflate request compression are accepted;
//! `max_recv_msg_size_mib` caps the message after decompression (tonic stops inflating at the
//! cap, so a gzip bomb costs at most the cap) and answers `RESOURCE_EXHAUSTED` above it.
//! Overload answers `RESOURCE_EXHAUSTED` with `RetryInfo`; a stopping gateway `UNAVAILABLE`.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::decode::{check_or_decode, PayloadEncoding};
use super::intake::{request_meta, Intake};
use super::GrpcServerConfig;
use super::ReceiverContext;
use crate::admission::{Cost, MemoryGate};
use crate::data::{Payload, Signal};
use crate::grpc::codec::{PassThrough, Proto, Raw};
use crate::grpc::status::{code, grpc_status};
use crate::net::{Edge, Peer};

/// One signal's request path: the message's bytes → [`payload`] (kept encoded when the
/// pipelines only forward it, decoded otherwise) → [`Intake::receive`] → a status.
pub struct SignalService {
    intake: Intake,
    include_metadata: bool,
    gate: Option<Arc<MemoryGate>>,
}

impl SignalService {
    async fn run(&self, req: Request<Bytes>) -> Result<(u64, String), Status> {
        let headers = self
            .include_metadata
            .then(|| req.metadata().clone().into_headers());
        let mut meta = request_meta(req.extensions().get::<Peer>(), headers.as_ref());
        let bytes = req.into_inner();
        meta.wire_size = bytes.len() as u64;
        let reads_items = self.intake.reads_items();
        let data = match check_or_decode(
            self.intake.signal,
            PayloadEncoding::Protobuf,
            bytes,
            reads_items,
        ) {
            Ok(d) => d,
            Err(e) => {
                self.intake.count_bad_request();
                tracing::debug!(error = %e, "rejected otlp/grpc request");
                return Err(grpc_status(
                    code::INVALID_ARGUMENT,
                    &format!("failed to decode protobuf: {e}"),
                    None,
                ));
            }
        };
        // the message as received and, when decoded, the decoded request, until answered
        let _held = self.gate.as_ref().map(|g| {
            g.note_request(meta.wire_size);
            let decoded = matches!(data, Payload::Decoded(_));
            (
                g.hold(Cost::Bytes(meta.wire_size)),
                decoded.then(|| g.hold(data.cost(meta.wire_size))),
            )
        });
        self.intake
            .receive(data, Arc::new(meta))
            .await
            .answer()
            .map_err(|r| grpc_status(r.grpc, &r.message, r.retry_after))
    }
}

/// What tells the three OTLP export services apart.
pub trait ExportKind: Send + Sync + 'static {
    /// The gRPC service name (`opentelemetry.proto.collector.trace.v1.TraceService`).
    const NAME: &'static str;
    const SIGNAL: Signal;
    type Response: prost::Message + Default + Send + 'static;
    fn response(rejected: u64, message: String) -> Self::Response;
}

pub struct TraceExport;
pub struct MetricsExport;
pub struct LogsExport;

impl ExportKind for TraceExport {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Signal = Signal::Traces;
    type Response = ExportTraceServiceResponse;
    fn response(rejected: u64, message: String) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: rejected as i64,
                error_message: message,
            }),
        }
    }
}

impl ExportKind for MetricsExport {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Signal = Signal::Metrics;
    type Response = ExportMetricsServiceResponse;
    fn response(rejected: u64, message: String) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected as i64,
                error_message: message,
            }),
        }
    }
}

impl ExportKind for LogsExport {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Signal = Signal::Logs;
    type Response = ExportLogsServiceResponse;
    fn response(rejected: u64, message: String) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: rejected as i64,
                error_message: message,
            }),
        }
    }
}

/// One OTLP export service, served by hand instead of through the generated server so the
/// message arrives as bytes ([`PassThrough`]): the request path decides whether to decode.
pub struct ExportServer<K> {
    svc: Arc<SignalService>,
    max_message: usize,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for ExportServer<K> {
    fn clone(&self) -> Self {
        ExportServer {
            svc: self.svc.clone(),
            max_message: self.max_message,
            _kind: PhantomData,
        }
    }
}

impl<K: ExportKind> tonic::server::NamedService for ExportServer<K> {
    const NAME: &'static str = K::NAME;
}

impl<K, B> tower::Service<http::Request<B>> for ExportServer<K>
where
    K: ExportKind,
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != K::SIGNAL.grpc_path() {
            let status = Status::unimplemented(format!("unknown method {}", req.uri().path()));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let unary = Unary::<K> {
            svc: self.svc.clone(),
            _kind: PhantomData,
        };
        let max = self.max_message;
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(PassThrough::<Proto<K::Response>, Raw>::new())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .accept_compressed(CompressionEncoding::Deflate)
                .max_decoding_message_size(max);
            Ok(grpc.unary(unary, req).await)
        })
    }
}

struct Unary<K> {
    svc: Arc<SignalService>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: ExportKind> tonic::server::UnaryService<Bytes> for Unary<K> {
    type Response = K::Response;
    type Future = BoxFuture<'static, Result<Response<K::Response>, Status>>;

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let svc = self.svc.clone();
        Box::pin(async move {
            let (rejected, message) = svc.run(req).await?;
            Ok(Response::new(K::response(rejected, message)))
        })
    }
}

/// tonic answers a message over `max_decoding_message_size` with `OUT_OF_RANGE`, which OTLP
/// clients treat as retryable: they would resend the same oversized message until their retry
/// budget runs out. Rewrite it to `RESOURCE_EXHAUSTED` without `RetryInfo` (not retryable),
/// whether the status travels in the headers (trailers-only answer) or in the trailers.
/// (A body that is not valid protobuf never reaches tonic's decoder: [`SignalService`] checks
/// it and answers `INVALID_ARGUMENT`, as the OTLP/HTTP receiver's 400.)
fn too_large_is_not_retryable<B>(mut resp: http::Response<B>) -> http::Response<TooLargeStatus<B>> {
    rewrite_too_large(resp.headers_mut());
    resp.map(TooLargeStatus)
}

fn rewrite_too_large(h: &mut http::HeaderMap) {
    let too_large = h.get("grpc-status").is_some_and(|v| v == "11")
        && h.get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| m.contains("length%20too%20large") || m.contains("length too large"));
    if too_large {
        h.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
}

/// A response body whose trailers go through [`rewrite_too_large`].
pub struct TooLargeStatus<B>(B);

impl<B: http_body::Body + Unpin> http_body::Body for TooLargeStatus<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match std::pin::Pin::new(&mut self.0).poll_frame(cx) {
            std::task::Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(t) = frame.trailers_mut() {
                    rewrite_too_large(t);
                }
                std::task::Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// Refuses calls before tonic reads or decodes them while the memory gate is closed:
/// `RESOURCE_EXHAUSTED` with `RetryInfo`, as a trailers-only answer.
#[derive(Clone)]
struct AdmissionLayer {
    gate: Option<Arc<MemoryGate>>,
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            gate: self.gate.clone(),
        }
    }
}

#[derive(Clone)]
struct Admission<S> {
    inner: S,
    gate: Option<Arc<MemoryGate>>,
}

impl<S, B, RB> tower::Service<http::Request<B>> for Admission<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // the message's size is unknown until it is read: admit by recent requests' size
        let ticket = match &self.gate {
            Some(gate) => match gate.admit(gate.expected_request()) {
                Ok(t) => Some(t),
                Err(retry_after) => {
                    let status = grpc_status(
                        code::RESOURCE_EXHAUSTED,
                        "memory limit reached; retry later",
                        Some(retry_after),
                    );
                    let resp = status.into_http::<RB>();
                    return Box::pin(async move { Ok(resp) });
                }
            },
            None => None,
        };
        let call = self.inner.call(req);
        Box::pin(async move {
            let _ticket = ticket;
            call.await
        })
    }
}

/// Starts the gRPC server on an already bound listener, behind the listener's [`Edge`] (TLS,
/// authentication, connection limits); resolves when `stop` fires and in-flight calls have
/// finished.
pub fn serve(
    cfg: &GrpcServerConfig,
    ctx: &ReceiverContext,
    edge: Edge,
    listener: TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let id = ctx.id.to_string();
    let max_message = (cfg.max_recv_msg_size_mib as usize).saturating_mul(1024 * 1024);
    let svc = |s: Signal| {
        let f = ctx.fanout(s);
        (!f.is_empty()).then(|| {
            Arc::new(SignalService {
                intake: Intake::new(&ctx.registry, &id, "grpc", s, f.clone()),
                include_metadata: cfg.include_metadata,
                gate: ctx.gate.clone(),
            })
        })
    };
    fn server<K>(svc: Arc<SignalService>, max_message: usize) -> ExportServer<K> {
        ExportServer {
            svc,
            max_message,
            _kind: PhantomData,
        }
    }
    let mut routes = tonic::service::Routes::builder();
    if let Some(s) = svc(Signal::Traces) {
        routes.add_service(server::<TraceExport>(s, max_message));
    }
    if let Some(s) = svc(Signal::Metrics) {
        routes.add_service(server::<MetricsExport>(s, max_message));
    }
    if let Some(s) = svc(Signal::Logs) {
        routes.add_service(server::<LogsExport>(s, max_message));
    }
    let service = tower::ServiceBuilder::new()
        .layer(tower::util::MapResponseLayer::new(
            too_large_is_not_retryable,
        ))
        .layer(AdmissionLayer {
            gate: ctx.gate.clone(),
        })
        .service(routes.routes());
    crate::net::serve(edge, listener, stop, move |_peer| {
        hyper_util::service::TowerToHyperService::new(service.clone())
    })
}
