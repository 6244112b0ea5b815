//! The request path shared by both OTLP transports, after decoding:
//! validate ids → fan out into pipelines → count → answer.
//!
//! Spans and log records whose trace or span ids have the wrong length (a trace id is 16 bytes,
//! a span id 8; empty is allowed for logs) are removed and reported through `partial_success`:
//! backends such as Tempo and Jaeger reject them anyway, and one bad item must not cost the
//! client the whole request.

use std::sync::Arc;
use std::time::Duration;

use crate::consumer::{ConsumeError, Rejections};
use crate::data::{Payload, RequestMeta, Signal, Telemetry};
use crate::pipeline::Fanout;
use crate::telemetry::metrics::{names, Counter, ReceiverCounters, Registry};

/// How one request ended, for the transport to encode.
#[derive(Debug)]
pub enum Outcome {
    /// Accepted; `rejected` items were dropped for the reasons given (partial success).
    Accepted { rejected: u64, message: String },
    /// Not accepted; the client may retry after the hint.
    Refused {
        retry_after: Duration,
        message: String,
    },
    /// Not accepted; retrying will not help (a synchronous export failed permanently).
    Failed { message: String },
    /// Not accepted because otelgw is stopping; retry (against another instance).
    Unavailable { message: String },
    /// Not accepted as sent; retrying the same request will not help.
    Invalid { message: String },
}

/// How a request that was not accepted is answered, the same on both transports: the HTTP
/// status, the gRPC code (in `google.rpc.Status` / `grpc-status`), and the retry hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub http: http::StatusCode,
    pub grpc: i32,
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl Outcome {
    /// `Ok((rejected, message))` for an accepted request (the `partial_success` to send), or
    /// how to answer one that was not accepted.
    pub fn answer(self) -> Result<(u64, String), Refusal> {
        use crate::grpc::status::code;
        use http::StatusCode;
        let refusal = |http, grpc, retry_after, message| Refusal {
            http,
            grpc,
            retry_after,
            message,
        };
        match self {
            Outcome::Accepted { rejected, message } => Ok((rejected, message)),
            Outcome::Refused {
                retry_after,
                message,
            } => Err(refusal(
                StatusCode::TOO_MANY_REQUESTS,
                code::RESOURCE_EXHAUSTED,
                Some(retry_after),
                message,
            )),
            Outcome::Invalid { message } => Err(refusal(
                StatusCode::BAD_REQUEST,
                code::INVALID_ARGUMENT,
                None,
                message,
            )),
            Outcome::Failed { message } => Err(refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL,
                None,
                message,
            )),
            Outcome::Unavailable { message } => Err(refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAVAILABLE,
                Some(Duration::from_secs(1)),
                message,
            )),
        }
    }
}

/// The request context both transports build: the client's address and authenticated identity
/// (the edge's [`Peer`](crate::net::Peer)) and, with the receiver's `include_metadata`, the
/// request headers (lowercase names; values that are not text are left out).
pub fn request_meta(
    peer: Option<&crate::net::Peer>,
    headers: Option<&http::HeaderMap>,
) -> RequestMeta {
    RequestMeta {
        client_address: peer.map(|p| p.addr),
        headers: headers
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| {
                        v.to_str()
                            .ok()
                            .map(|v| (k.as_str().to_string(), v.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        wire_size: 0,
        auth: peer.and_then(|p| p.identity.clone()),
    }
}

/// One receiver's entry to the pipelines for one signal and transport.
#[derive(Clone)]
pub struct Intake {
    pub signal: Signal,
    fanout: Fanout,
    counters: ReceiverCounters,
    outcome_ok: Counter,
    outcome_refused: Counter,
    outcome_failed: Counter,
    /// Requests passed on as the protobuf bytes received.
    forwarded: Counter,
    /// Whether a pipeline fed by this intake forwards bytes (fixed when the graph is built).
    reads_items: bool,
}

impl Intake {
    pub fn new(
        reg: &Registry,
        receiver: &str,
        transport: &'static str,
        signal: Signal,
        fanout: Fanout,
    ) -> Intake {
        let req = |outcome: &str| {
            reg.counter(
                names::RECEIVER_REQUESTS,
                "Requests received, by outcome.",
                &[
                    ("receiver", receiver),
                    ("transport", transport),
                    ("signal", signal.as_str()),
                    ("outcome", outcome),
                ],
            )
        };
        Intake {
            signal,
            reads_items: fanout.reads_items(),
            fanout,
            counters: ReceiverCounters::new(reg, receiver, transport, signal),
            outcome_ok: req("accepted"),
            outcome_refused: req("refused"),
            outcome_failed: req("failed"),
            forwarded: reg.counter(
                names::RECEIVER_FORWARDED,
                "Requests passed on as the protobuf bytes received, without a decode.",
                &[
                    ("receiver", receiver),
                    ("transport", transport),
                    ("signal", signal.as_str()),
                ],
            ),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fanout.is_empty()
    }

    /// Counts a request refused before it could be decoded (bad body, too large, …). Its items
    /// are unknown, so only the request is counted.
    pub fn count_bad_request(&self) {
        self.outcome_failed.inc();
    }

    /// Counts a request refused before it was read (memory limit); retryable.
    pub fn count_refused_request(&self) {
        self.outcome_refused.inc();
    }

    /// What a pull receiver (a scraper) does with one collection it made: the memory gate, when
    /// there is one, admits it (a refusal is counted and nothing is kept), then the pipelines
    /// take it. `Err` says why it was not taken, for the receiver's log.
    pub async fn offer(
        &self,
        data: Telemetry,
        gate: Option<&Arc<crate::admission::MemoryGate>>,
    ) -> Result<(), String> {
        match self.offer_outcome(data, gate).await {
            Outcome::Accepted { .. } => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }

    /// [`Intake::offer`] with the pipelines' full answer (a receiver that retries needs to
    /// tell a refusal from a permanent failure). The memory gate's refusal is `Refused`.
    pub async fn offer_outcome(
        &self,
        data: Telemetry,
        gate: Option<&Arc<crate::admission::MemoryGate>>,
    ) -> Outcome {
        let wire = data.encoded_len() as u64;
        let _held = match gate {
            None => None,
            Some(g) => match g.admit(crate::admission::Cost::Decoded(wire).bytes()) {
                Ok(t) => Some(t),
                Err(_) => {
                    self.count_refused_request();
                    return Outcome::Refused {
                        retry_after: Duration::from_secs(1),
                        message: "memory limit reached".into(),
                    };
                }
            },
        };
        let meta = RequestMeta {
            wire_size: wire,
            ..RequestMeta::default()
        };
        self.receive(Payload::Decoded(data), Arc::new(meta)).await
    }

    /// True when every pipeline fed by this intake reads the items, so the receiver decodes up
    /// front; false when one forwards the client's protobuf as it is and the receiver keeps it
    /// encoded ([`Fanout::reads_items`]).
    pub fn reads_items(&self) -> bool {
        self.reads_items
    }

    /// Runs a request through the pipelines. A decoded request loses its items with malformed
    /// ids here; an encoded one comes from [`crate::wire::scan`], which found none.
    pub async fn receive(&self, mut data: Payload, meta: Arc<RequestMeta>) -> Outcome {
        let mut rejected = Rejections::default();
        match &mut data {
            Payload::Decoded(t) => drop_invalid_ids(t, &mut rejected),
            Payload::Encoded(_) => self.forwarded.inc(),
        }
        let items = data.item_count();
        self.counters.refused.add(rejected.count);
        if items == 0 {
            self.outcome_ok.inc();
            return Outcome::Accepted {
                rejected: rejected.count,
                message: rejected.message(),
            };
        }
        match self.fanout.consume(data, meta).await {
            Ok(r) => {
                // Items processors removed were received but not passed on; the Collector
                // counts receipt, so accepted covers them and the client hears of them.
                self.counters.accepted.add(items);
                self.outcome_ok.inc();
                rejected.merge(r);
                Outcome::Accepted {
                    rejected: rejected.count,
                    message: rejected.message(),
                }
            }
            Err(e) => {
                self.counters.refused.add(items);
                match e {
                    ConsumeError::Refused {
                        retry_after,
                        message,
                        ..
                    } => {
                        self.outcome_refused.inc();
                        Outcome::Refused {
                            retry_after,
                            message,
                        }
                    }
                    ConsumeError::ExportFailed {
                        retryable: true,
                        message,
                        ..
                    } => {
                        self.outcome_refused.inc();
                        Outcome::Refused {
                            retry_after: Duration::from_secs(5),
                            message,
                        }
                    }
                    ConsumeError::ExportFailed { message, .. } => {
                        self.outcome_failed.inc();
                        Outcome::Failed { message }
                    }
                    ConsumeError::Invalid { message } => {
                        self.outcome_failed.inc();
                        Outcome::Invalid { message }
                    }
                    ConsumeError::ShuttingDown => {
                        self.outcome_refused.inc();
                        Outcome::Unavailable {
                            message: "otelgw is shutting down".into(),
                        }
                    }
                }
            }
        }
    }
}

fn valid_trace_id(id: &[u8]) -> bool {
    id.len() == 16 && id.iter().any(|b| *b != 0)
}

fn valid_span_id(id: &[u8]) -> bool {
    id.len() == 8 && id.iter().any(|b| *b != 0)
}

/// Removes spans with invalid ids and log records with malformed (non-empty, wrong length) ids.
pub fn drop_invalid_ids(data: &mut Telemetry, rejected: &mut Rejections) {
    match data {
        Telemetry::Traces(r) => {
            let mut bad = 0u64;
            for rs in &mut r.resource_spans {
                for ss in &mut rs.scope_spans {
                    let before = ss.spans.len();
                    ss.spans.retain(|s| {
                        valid_trace_id(&s.trace_id)
                            && valid_span_id(&s.span_id)
                            && (s.parent_span_id.is_empty() || s.parent_span_id.len() == 8)
                    });
                    bad += (before - ss.spans.len()) as u64;
                }
            }
            rejected.add(
                bad,
                "spans need a 16-byte non-zero trace_id and an 8-byte non-zero span_id",
            );
        }
        Telemetry::Logs(r) => {
            let mut bad = 0u64;
            for rl in &mut r.resource_logs {
                for sl in &mut rl.scope_logs {
                    let before = sl.log_records.len();
                    sl.log_records.retain(|l| {
                        (l.trace_id.is_empty() || l.trace_id.len() == 16)
                            && (l.span_id.is_empty() || l.span_id.len() == 8)
                    });
                    bad += (before - sl.log_records.len()) as u64;
                }
            }
            rejected.add(
                bad,
                "log records with a trace_id must use 16 bytes, span_id 8 bytes",
            );
        }
        Telemetry::Metrics(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    #[test]
    fn invalid_span_ids_are_removed_and_reported() {
        let good = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        };
        let short = Span {
            trace_id: vec![1; 15],
            span_id: vec![2; 8],
            ..Default::default()
        };
        let zero = Span {
            trace_id: vec![0; 16],
            span_id: vec![2; 8],
            ..Default::default()
        };
        let mut t = Telemetry::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![good.clone(), short, zero],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        let mut r = Rejections::default();
        drop_invalid_ids(&mut t, &mut r);
        assert_eq!(r.count, 2);
        assert_eq!(t.item_count(), 1);
        assert!(r.message().contains("16-byte"));
    }
}
