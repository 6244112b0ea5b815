//! Protobuf encoding of OTLP export requests with each item's length computed once.
//!
//! prost encodes a nested message by writing its length (a full `encoded_len` walk of the
//! subtree) and then its fields, at every level: `Message::encode` on an export request walks
//! each span's subtree five times (the capacity check, the top-level length, the resource level,
//! the scope level, and the span's own fields). The three OTLP signals share one envelope shape
//! — `Export*ServiceRequest{1: repeated Resource*}`, `Resource*{1: resource, 2: repeated
//! Scope*, 3: schema_url}`, `Scope*{1: scope, 2: repeated item, 3: schema_url}` — so the
//! envelopes are written here by hand from lengths computed in one bottom-up pass, and only the
//! items (spans, log records, metrics) are encoded by prost. The output is byte-for-byte what
//! prost writes (tested below).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;

/// `Resource{Spans,Logs,Metrics}`.
trait Envelope {
    type Scope: ScopeEnvelope;
    fn resource(&self) -> Option<&Resource>;
    fn scopes(&self) -> &[Self::Scope];
    fn schema_url(&self) -> &str;
}

/// `Scope{Spans,Logs,Metrics}`.
trait ScopeEnvelope {
    type Item: Message;
    fn scope(&self) -> Option<&InstrumentationScope>;
    fn items(&self) -> &[Self::Item];
    fn schema_url(&self) -> &str;
}

macro_rules! envelopes {
    ($res:ty, $scope:ty, $item:ty, $scopes:ident, $items:ident) => {
        impl Envelope for $res {
            type Scope = $scope;
            fn resource(&self) -> Option<&Resource> {
                self.resource.as_ref()
            }
            fn scopes(&self) -> &[$scope] {
                &self.$scopes
            }
            fn schema_url(&self) -> &str {
                &self.schema_url
            }
        }
        impl ScopeEnvelope for $scope {
            type Item = $item;
            fn scope(&self) -> Option<&InstrumentationScope> {
                self.scope.as_ref()
            }
            fn items(&self) -> &[$item] {
                &self.$items
            }
            fn schema_url(&self) -> &str {
                &self.schema_url
            }
        }
    };
}

envelopes!(ResourceSpans, ScopeSpans, Span, scope_spans, spans);
envelopes!(ResourceLogs, ScopeLogs, LogRecord, scope_logs, log_records);
envelopes!(
    ResourceMetrics,
    ScopeMetrics,
    Metric,
    scope_metrics,
    metrics
);

/// Bytes of a length-delimited field with tag `tag` and a body of `len` bytes.
fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn string_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        field_len(tag, s.len())
    }
}

fn put_len(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn put_string(tag: u32, s: &str, buf: &mut Vec<u8>) {
    if !s.is_empty() {
        put_len(tag, s.len(), buf);
        buf.extend_from_slice(s.as_bytes());
    }
}

fn put_message<M: Message>(tag: u32, m: &M, len: usize, buf: &mut Vec<u8>) {
    put_len(tag, len, buf);
    m.encode_raw(buf);
}

fn encode<E: Envelope>(envelopes: &[E]) -> Vec<u8> {
    // pass 1: every length, bottom-up, each subtree walked once
    let mut item_lens = Vec::new();
    let mut scope_lens = Vec::new();
    let mut env_lens = Vec::with_capacity(envelopes.len());
    let mut meta_lens = Vec::new(); // resource / scope message lengths, in write order
    let mut total = 0;
    for e in envelopes {
        let mut elen = 0;
        if let Some(r) = e.resource() {
            let l = r.encoded_len();
            meta_lens.push(l);
            elen += field_len(1, l);
        }
        for s in e.scopes() {
            let mut slen = 0;
            if let Some(sc) = s.scope() {
                let l = sc.encoded_len();
                meta_lens.push(l);
                slen += field_len(1, l);
            }
            for it in s.items() {
                let l = it.encoded_len();
                item_lens.push(l);
                slen += field_len(2, l);
            }
            slen += string_len(3, s.schema_url());
            scope_lens.push(slen);
            elen += field_len(2, slen);
        }
        elen += string_len(3, e.schema_url());
        env_lens.push(elen);
        total += field_len(1, elen);
    }
    // pass 2: write
    let mut buf = Vec::with_capacity(total);
    let (mut items, mut scopes, mut metas) =
        (item_lens.iter(), scope_lens.iter(), meta_lens.iter());
    for (e, elen) in envelopes.iter().zip(&env_lens) {
        put_len(1, *elen, &mut buf);
        if let Some(r) = e.resource() {
            put_message(1, r, metas.next().copied().unwrap_or(0), &mut buf);
        }
        for s in e.scopes() {
            put_len(2, scopes.next().copied().unwrap_or(0), &mut buf);
            if let Some(sc) = s.scope() {
                put_message(1, sc, metas.next().copied().unwrap_or(0), &mut buf);
            }
            for it in s.items() {
                put_message(2, it, items.next().copied().unwrap_or(0), &mut buf);
            }
            put_string(3, s.schema_url(), &mut buf);
        }
        put_string(3, e.schema_url(), &mut buf);
    }
    buf
}

pub fn traces(r: &ExportTraceServiceRequest) -> Vec<u8> {
    encode(&r.resource_spans)
}

pub fn logs(r: &ExportLogsServiceRequest) -> Vec<u8> {
    encode(&r.resource_logs)
}

pub fn metrics(r: &ExportMetricsServiceRequest) -> Vec<u8> {
    encode(&r.resource_metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn same_bytes_as_prost() {
        for seed in 0..5 {
            let t = testdata::traces(seed, 3, 40);
            assert_eq!(traces(&t), t.encode_to_vec());
            let l = testdata::logs(seed, 2, 30);
            assert_eq!(logs(&l), l.encode_to_vec());
            let m = testdata::metrics(seed, 2, 7);
            assert_eq!(metrics(&m), m.encode_to_vec());
        }
        // absent resource and scope, schema urls, empty lists
        let mut t = testdata::traces(1, 2, 3);
        t.resource_spans[0].resource = None;
        t.resource_spans[0].scope_spans[0].scope = None;
        t.resource_spans[1].schema_url = "https://opentelemetry.io/schemas/1.26.0".into();
        t.resource_spans[1].scope_spans[0].schema_url = "s".into();
        t.resource_spans[1].scope_spans.push(Default::default());
        t.resource_spans.push(Default::default());
        assert_eq!(traces(&t), t.encode_to_vec());
        assert!(traces(&Default::default()).is_empty());
    }
}
