//! The data model: OTLP prost structs, end to end.
//!
//! A [`Telemetry`] is one export request of one signal exactly as OTLP defines it
//! (`ExportTraceServiceRequest`, …). Receivers produce it, processors edit it in place, exporters
//! encode it. There is no second event model; the helpers here give the pipeline what it needs
//! (the signal, the item count, the encoded size) without copying. On its way through the
//! pipeline a request is a [`Payload`]: decoded, or — when nothing reads it — the same request
//! as the protobuf bytes the client sent.

pub mod attributes;
pub mod split;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::admission::{Cost, Reservation};

pub use crate::component::Signal;

/// One OTLP export request of one signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Telemetry {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

impl Telemetry {
    pub fn signal(&self) -> Signal {
        match self {
            Telemetry::Traces(_) => Signal::Traces,
            Telemetry::Metrics(_) => Signal::Metrics,
            Telemetry::Logs(_) => Signal::Logs,
        }
    }

    /// An empty request of `signal`.
    pub fn empty(signal: Signal) -> Telemetry {
        match signal {
            Signal::Traces => Telemetry::Traces(Default::default()),
            Signal::Metrics => Telemetry::Metrics(Default::default()),
            Signal::Logs => Telemetry::Logs(Default::default()),
        }
    }

    /// Items as the Collector counts them: spans, metric data points, log records.
    pub fn item_count(&self) -> u64 {
        match self {
            Telemetry::Traces(r) => span_count(r),
            Telemetry::Metrics(r) => data_point_count(r),
            Telemetry::Logs(r) => log_record_count(r),
        }
    }

    /// The protobuf-encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Telemetry::Traces(r) => r.encoded_len(),
            Telemetry::Metrics(r) => r.encoded_len(),
            Telemetry::Logs(r) => r.encoded_len(),
        }
    }

    /// Encodes to protobuf bytes.
    /// Encodes to protobuf bytes (each item's length computed once: [`crate::encode`]).
    pub fn encode_to_bytes(&self) -> Bytes {
        Bytes::from(match self {
            Telemetry::Traces(r) => crate::encode::traces(r),
            Telemetry::Metrics(r) => crate::encode::metrics(r),
            Telemetry::Logs(r) => crate::encode::logs(r),
        })
    }

    /// Encodes as OTLP/JSON (hex ids, lowerCamelCase, 64-bit ints as strings).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Telemetry::Traces(r) => serde_json::to_vec(r),
            Telemetry::Metrics(r) => serde_json::to_vec(r),
            Telemetry::Logs(r) => serde_json::to_vec(r),
        }
    }

    /// Decodes protobuf bytes of the given signal.
    pub fn decode_proto(signal: Signal, bytes: &[u8]) -> Result<Telemetry, prost::DecodeError> {
        Ok(match signal {
            Signal::Traces => Telemetry::Traces(ExportTraceServiceRequest::decode(bytes)?),
            Signal::Metrics => Telemetry::Metrics(ExportMetricsServiceRequest::decode(bytes)?),
            Signal::Logs => Telemetry::Logs(ExportLogsServiceRequest::decode(bytes)?),
        })
    }

    /// Decodes OTLP/JSON of the given signal.
    pub fn decode_json(signal: Signal, bytes: &[u8]) -> Result<Telemetry, serde_json::Error> {
        Ok(match signal {
            Signal::Traces => Telemetry::Traces(serde_json::from_slice(bytes)?),
            Signal::Metrics => Telemetry::Metrics(serde_json::from_slice(bytes)?),
            Signal::Logs => Telemetry::Logs(serde_json::from_slice(bytes)?),
        })
    }

    /// The resource of every resource group, in order.
    pub fn resources_mut(&mut self) -> Vec<&mut Option<Resource>> {
        match self {
            Telemetry::Traces(r) => r
                .resource_spans
                .iter_mut()
                .map(|g| &mut g.resource)
                .collect(),
            Telemetry::Metrics(r) => r
                .resource_metrics
                .iter_mut()
                .map(|g| &mut g.resource)
                .collect(),
            Telemetry::Logs(r) => r
                .resource_logs
                .iter_mut()
                .map(|g| &mut g.resource)
                .collect(),
        }
    }

    /// True when the request holds no resource groups at all.
    pub fn is_empty(&self) -> bool {
        match self {
            Telemetry::Traces(r) => r.resource_spans.is_empty(),
            Telemetry::Metrics(r) => r.resource_metrics.is_empty(),
            Telemetry::Logs(r) => r.resource_logs.is_empty(),
        }
    }
}

/// One request on its way through a pipeline: decoded into the prost structs, or still the
/// protobuf encoding the client sent.
///
/// Receivers keep the encoding when no component of the pipelines they feed reads the contents
/// (only `memory_limiter` and `batch` before OTLP exporters): [`crate::wire::scan`] has checked
/// the bytes as strictly as a prost decode would, counted the items and found no malformed id,
/// so forwarding them is what decoding and re-encoding would send — minus the work, and plus
/// any fields newer than our proto definitions, which a decode would drop. Whatever needs the
/// contents takes [`Payload::into_decoded`].
#[derive(Debug, Clone)]
pub enum Payload {
    Decoded(Telemetry),
    Encoded(Encoded),
}

/// A request's protobuf encoding, checked by [`crate::wire::scan`], with its item count.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub signal: Signal,
    pub items: u64,
    pub bytes: Bytes,
}

impl From<Telemetry> for Payload {
    fn from(t: Telemetry) -> Payload {
        Payload::Decoded(t)
    }
}

impl Payload {
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Decoded(t) => t.signal(),
            Payload::Encoded(e) => e.signal,
        }
    }

    /// Items as the Collector counts them (kept from the scan for an encoded request).
    pub fn item_count(&self) -> u64 {
        match self {
            Payload::Decoded(t) => t.item_count(),
            Payload::Encoded(e) => e.items,
        }
    }

    /// True when there is nothing to pass on.
    pub fn is_empty(&self) -> bool {
        match self {
            Payload::Decoded(t) => t.is_empty(),
            Payload::Encoded(e) => e.bytes.is_empty(),
        }
    }

    /// The protobuf size: the encoding's length, or an `encoded_len` walk.
    pub fn encoded_len(&self) -> usize {
        match self {
            Payload::Decoded(t) => t.encoded_len(),
            Payload::Encoded(e) => e.bytes.len(),
        }
    }

    /// What the request costs in memory as it is: its bytes when encoded; decoded, the structs
    /// decoded from `wire_size` protobuf bytes (from an `encoded_len` walk when that is 0).
    pub fn cost(&self, wire_size: u64) -> Cost {
        match self {
            Payload::Encoded(e) => Cost::Bytes(e.bytes.len() as u64),
            Payload::Decoded(t) => Cost::Decoded(match wire_size {
                0 => t.encoded_len() as u64,
                n => n,
            }),
        }
    }

    /// The contents, owned.
    pub fn into_decoded(self) -> Telemetry {
        match self {
            Payload::Decoded(t) => t,
            Payload::Encoded(e) => decode_checked(&e),
        }
    }

    /// What an exporter's sending queue holds.
    pub fn into_outgoing(self, meta: Arc<RequestMeta>) -> Outgoing {
        match self {
            Payload::Decoded(t) => Outgoing::new(t, meta),
            Payload::Encoded(e) => Outgoing::from_encoded(e.signal, e.items, meta, e.bytes),
        }
    }
}

/// Decodes bytes [`crate::wire::scan`] accepted. The scan accepts exactly what prost accepts
/// (property-tested in `wire`), so this cannot fail unless that promise is broken; if it is,
/// the loss is logged rather than hidden.
fn decode_checked(e: &Encoded) -> Telemetry {
    decode_or_log(e.signal, &e.bytes, e.items)
}

/// Decodes bytes that were vouched for (by `wire::scan`, or a persistent queue's checksum);
/// if they still do not decode, the loss is logged and the request is empty.
fn decode_or_log(signal: Signal, bytes: &[u8], items: u64) -> Telemetry {
    Telemetry::decode_proto(signal, bytes).unwrap_or_else(|e| {
        tracing::error!(%signal, items, error = %e, "vouched-for bytes do not decode; their contents are lost");
        Telemetry::empty(signal)
    })
}

pub fn span_count(r: &ExportTraceServiceRequest) -> u64 {
    r.resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .map(|ss| ss.spans.len() as u64)
        .sum()
}

pub fn log_record_count(r: &ExportLogsServiceRequest) -> u64 {
    r.resource_logs
        .iter()
        .flat_map(|rl| rl.scope_logs.iter())
        .map(|sl| sl.log_records.len() as u64)
        .sum()
}

pub fn data_point_count(r: &ExportMetricsServiceRequest) -> u64 {
    r.resource_metrics
        .iter()
        .flat_map(|rm| rm.scope_metrics.iter())
        .flat_map(|sm| sm.metrics.iter())
        .map(metric_point_count)
        .sum()
}

/// Data points in one metric, as the Collector counts them.
pub fn metric_point_count(m: &Metric) -> u64 {
    (match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }) as u64
}

/// Lowercase hex of ids (trace and span ids are hex in OTLP/JSON, Loki and exemplars).
/// A wall-clock time as Unix nanoseconds (0 before the epoch, saturating past 2554).
pub fn unix_nanos(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

/// Request context carried beside the data: who sent it and, when the receiver's
/// `include_metadata` is on, the request headers (lowercased names).
#[derive(Debug, Default, Clone)]
pub struct RequestMeta {
    pub client_address: Option<std::net::SocketAddr>,
    pub headers: Vec<(String, String)>,
    /// The request's protobuf (or uncompressed JSON) size as received, 0 when unknown: the
    /// memory gate's estimate for the pipeline's copies, so they need no `encoded_len` walk.
    pub wire_size: u64,
    /// The identity the receiver's authenticator vouched for (basic-auth user, or the bearer
    /// authenticator's id); `None` without `auth`.
    pub auth: Option<Arc<str>>,
}

/// What travels through an exporter's sending queue: one request or one batch (whatever the
/// pipeline handed on), its context, and the protobuf encoding computed at most once (retries
/// and several OTLP exporters reuse it). One read back from a persistent queue starts from its
/// encoding and is decoded only if an exporter asks for the contents ([`Outgoing::data`]); the
/// OTLP exporters send the bytes as they are. It also holds the memory it costs on the
/// admission gate's account until it is dropped (after its export).
#[derive(Debug)]
pub struct Outgoing {
    signal: Signal,
    data: OnceLock<Telemetry>,
    pub meta: Arc<RequestMeta>,
    items: u64,
    encoded: OnceLock<Bytes>,
    /// Memory this batch holds on the admission gate's account, released when it is dropped
    /// (shared with the other exporters' batches when they share a buffer).
    memory: Vec<Arc<Reservation>>,
    /// The size of its protobuf encoding as far as known (0: unknown), the price of the copy
    /// an export makes ([`Outgoing::hold_send_copy`]).
    wire_size: u64,
}

impl Outgoing {
    pub fn new(data: Telemetry, meta: Arc<RequestMeta>) -> Outgoing {
        let items = data.item_count();
        Outgoing {
            signal: data.signal(),
            data: OnceLock::from(data),
            meta,
            items,
            encoded: OnceLock::new(),
            memory: Vec::new(),
            wire_size: 0,
        }
    }

    /// A batch known by its protobuf encoding (read back from a persistent queue, where a
    /// checksum vouches for the bytes); decoded on first [`Outgoing::data`].
    pub fn from_encoded(
        signal: Signal,
        items: u64,
        meta: Arc<RequestMeta>,
        encoded: Bytes,
    ) -> Outgoing {
        Outgoing {
            signal,
            data: OnceLock::new(),
            meta,
            items,
            encoded: OnceLock::from(encoded),
            memory: Vec::new(),
            wire_size: 0,
        }
    }

    /// The contents, decoded from the encoding on first use. Bytes that do not decode (only
    /// possible for a persistent-queue record written by another version) give an empty request,
    /// logged; the batch's item count still says what it held.
    pub fn data(&self) -> &Telemetry {
        self.data.get_or_init(|| {
            let bytes = self.encoded.get().map(|b| b.as_ref()).unwrap_or_default();
            decode_or_log(self.signal, bytes, self.items)
        })
    }

    /// Puts memory the batch holds on the gate's account until it is dropped (after the
    /// export).
    pub fn with_memory(mut self, r: Option<Arc<Reservation>>) -> Outgoing {
        self.memory.extend(r);
        self
    }

    /// Records the size of the batch's protobuf encoding (as the receiver measured it), so an
    /// export can price its copy without encoding first.
    pub fn with_wire_size(mut self, n: u64) -> Outgoing {
        self.wire_size = n;
        self
    }

    /// Puts the copy an export attempt makes of the batch (a send buffer, a compressed or JSON
    /// body) on the account the batch is held on, until the returned reservation is dropped.
    /// `None` when no memory limiter holds the batch.
    pub fn hold_send_copy(&self) -> Option<Reservation> {
        let gate = self.memory.first()?.gate();
        let size = match self.encoded.get() {
            Some(b) => b.len() as u64,
            None => self.wire_size,
        };
        Some(gate.hold(Cost::Bytes(size)))
    }

    pub fn signal(&self) -> Signal {
        self.signal
    }

    pub fn items(&self) -> u64 {
        self.items
    }

    /// The protobuf encoding if it is known already (the batch came encoded, or an export
    /// encoded it): never computes it.
    pub fn encoded_if_known(&self) -> Option<&Bytes> {
        self.encoded.get()
    }

    /// The protobuf encoding, computed on first use.
    pub fn encoded(&self) -> &Bytes {
        self.encoded.get_or_init(|| self.data().encode_to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    #[test]
    fn counts_spans_across_resources_and_scopes() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    scope_spans: vec![
                        ScopeSpans {
                            spans: vec![Span::default(), Span::default()],
                            ..Default::default()
                        },
                        ScopeSpans {
                            spans: vec![Span::default()],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                ResourceSpans::default(),
            ],
        };
        let t = Telemetry::Traces(req);
        assert_eq!(t.item_count(), 3);
        let bytes = t.encode_to_bytes();
        assert_eq!(Telemetry::decode_proto(Signal::Traces, &bytes).unwrap(), t);
    }
}
