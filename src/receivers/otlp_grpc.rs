//! OTLP over gRPC (tonic): `TraceService`, `MetricsService`, `LogsService` `Export`.
//!
//! Only the services of signals that some pipeline takes from this receiver are registered;
//! the others answer `UNIMPLEMENTED`. gzip, zstd and deflate request compression are accepted;
//! `max_recv_msg_size_mib` caps the message after decompression (tonic stops inflating at the
//! cap, so a gzip bomb costs at most the cap) and answers `RESOURCE_EXHAUSTED` above it.
//! Overload answers `RESOURCE_EXHAUSTED` with `RetryInfo`; a stopping gateway `UNAVAILABLE`.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::admission::{MemoryGate, DECODED_FACTOR};
use super::handle::{Outcome, Sink};
use super::status::{code, grpc_status};
use super::GrpcServerConfig;
use crate::data::{RequestMeta, Signal, Telemetry};
use crate::pipeline::ReceiverContext;

/// One signal's gRPC service.
#[derive(Clone)]
pub struct SignalService {
    sink: Sink,
    include_metadata: bool,
    gate: Option<Arc<MemoryGate>>,
}

impl SignalService {
    async fn run<T>(
        &self,
        req: Request<T>,
        wrap: fn(T) -> Telemetry,
    ) -> Result<(u64, String), Status> {
        let mut meta = RequestMeta {
            client_address: req.remote_addr(),
            ..Default::default()
        };
        if self.include_metadata {
            meta.headers = req
                .metadata()
                .clone()
                .into_headers()
                .iter()
                .filter_map(|(k, v)| {
                    v.to_str()
                        .ok()
                        .map(|v| (k.as_str().to_string(), v.to_string()))
                })
                .collect();
        }
        let data = wrap(req.into_inner());
        let _held = self.gate.as_ref().map(|g| {
            // one size walk, reused by the pipeline's reservations
            meta.wire_size = data.encoded_len() as u64;
            g.reserve(meta.wire_size * (1 + DECODED_FACTOR))
        });
        match self.sink.receive(data, Arc::new(meta)).await {
            Outcome::Accepted { rejected, message } => Ok((rejected, message)),
            Outcome::Refused {
                retry_after,
                message,
            } => Err(grpc_status(
                code::RESOURCE_EXHAUSTED,
                &message,
                Some(retry_after),
            )),
            Outcome::Failed { message } => Err(grpc_status(code::INTERNAL, &message, None)),
            Outcome::Invalid { message } => {
                Err(grpc_status(code::INVALID_ARGUMENT, &message, None))
            }
            Outcome::Unavailable { message } => Err(grpc_status(
                code::UNAVAILABLE,
                &message,
                Some(std::time::Duration::from_secs(1)),
            )),
        }
    }
}

#[tonic::async_trait]
impl TraceService for SignalService {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let (rejected, message) = self.run(req, Telemetry::Traces).await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: rejected as i64,
                error_message: message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for SignalService {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let (rejected, message) = self.run(req, Telemetry::Metrics).await?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected as i64,
                error_message: message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for SignalService {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let (rejected, message) = self.run(req, Telemetry::Logs).await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: rejected as i64,
                error_message: message,
            }),
        }))
    }
}

/// tonic answers a message over `max_decoding_message_size` with `OUT_OF_RANGE`, which OTLP
/// clients treat as retryable: they would resend the same oversized message until their retry
/// budget runs out. Rewrite it to `RESOURCE_EXHAUSTED` without `RetryInfo` (not retryable),
/// whether the status travels in the headers (trailers-only answer) or in the trailers.
/// Likewise a body that is not valid protobuf: tonic says `INTERNAL` (a server fault); the
/// client sent bad data, so it becomes `INVALID_ARGUMENT`, as the OTLP/HTTP receiver's 400.
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
    let undecodable = h.get("grpc-status").is_some_and(|v| v == "13")
        && h.get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| {
                m.contains("failed%20to%20decode%20Protobuf")
                    || m.contains("failed to decode Protobuf")
            });
    if undecodable {
        h.insert("grpc-status", http::HeaderValue::from_static("3"));
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
        if let Some(gate) = &self.gate {
            if let Err(retry_after) = gate.admit() {
                let status = grpc_status(
                    code::RESOURCE_EXHAUSTED,
                    "memory limit reached; retry later",
                    Some(retry_after),
                );
                let resp = status.into_http::<RB>();
                return Box::pin(async move { Ok(resp) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}

/// Starts the gRPC server on an already bound listener; resolves when `stop` fires and in-flight
/// calls have finished.
pub fn serve(
    cfg: &GrpcServerConfig,
    ctx: &ReceiverContext,
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let id = ctx.id.to_string();
    let svc = |s: Signal| {
        let f = ctx.fanout(s);
        (!f.is_empty()).then(|| SignalService {
            sink: Sink::new(&ctx.registry, &id, "grpc", s, f.clone()),
            include_metadata: cfg.include_metadata,
            gate: ctx.gate.clone(),
        })
    };
    let max = (cfg.max_recv_msg_size_mib as usize).saturating_mul(1024 * 1024);
    macro_rules! configure {
        ($server:expr) => {
            $server
                .max_decoding_message_size(max)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .accept_compressed(CompressionEncoding::Deflate)
        };
    }
    let traces = svc(Signal::Traces).map(|s| configure!(TraceServiceServer::new(s)));
    let metrics = svc(Signal::Metrics).map(|s| configure!(MetricsServiceServer::new(s)));
    let logs = svc(Signal::Logs).map(|s| configure!(LogsServiceServer::new(s)));
    let router = tonic::transport::Server::builder()
        .layer(
            tower::ServiceBuilder::new()
                .layer(tower::util::MapResponseLayer::new(
                    too_large_is_not_retryable,
                ))
                .layer(AdmissionLayer {
                    gate: ctx.gate.clone(),
                }),
        )
        .tcp_nodelay(true)
        .max_concurrent_streams(cfg.max_concurrent_streams)
        .add_optional_service(traces)
        .add_optional_service(metrics)
        .add_optional_service(logs);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(async move {
        let shutdown = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            tracing::error!(receiver = %id, error = %e, "grpc server stopped with an error");
        }
    })
}
