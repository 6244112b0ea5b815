//! The push itself: Loki's wire types (`proto/loki/push.proto` as hand-written prost
//! structs), the request body (snappy block-compressed protobuf, or Loki's JSON), and the HTTP
//! request with how Loki's answers are classified (429 and 5xx retried, other 4xx permanent and
//! logged once per status).

use bytes::Bytes;
use prost::Message;

use super::labels::parse_selector;
use super::{LokiEncoding, LokiExporter};
use crate::exporters::retry::{classify_http_push, parse_retry_after, ExportError};

#[derive(Clone, PartialEq, Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<prost_types::Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

impl LokiExporter {
    fn body(&self, push: &PushRequest) -> Result<(Bytes, &'static str), ExportError> {
        match self.cfg.encoding {
            LokiEncoding::Protobuf => {
                let raw = push.encode_to_vec();
                let z = snap::raw::Encoder::new()
                    .compress_vec(&raw)
                    .map_err(|e| ExportError::permanent("encode", format!("snappy: {e}")))?;
                Ok((Bytes::from(z), "application/x-protobuf"))
            }
            LokiEncoding::Json => {
                Ok((Bytes::from(push_json(push).to_string()), "application/json"))
            }
        }
    }

    pub(super) async fn send(
        &self,
        tenant: Option<&str>,
        push: &PushRequest,
        meta: &crate::data::RequestMeta,
    ) -> Result<(), ExportError> {
        let (body, ct) = self.body(push)?;
        let mut req = self
            .client
            .post(&self.cfg.endpoint)
            .header("content-type", ct)
            .body(body);
        if let Some(t) = tenant {
            req = req.header("x-scope-orgid", t);
        }
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(b) = &self.cfg.basic_auth {
            req = req.basic_auth(&b.username, Some(&b.password));
        }
        if let Some(t) = &self.cfg.bearer_token {
            req = req.bearer_auth(t);
        }
        if let Some(a) = &self.auth {
            let mut h = reqwest::header::HeaderMap::new();
            a.apply_client(&mut h, meta);
            req = req.headers(h);
        }
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            ExportError::retryable(kind, format!("push to {} failed: {e}", self.cfg.endpoint))
        })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let reason = resp.text().await.unwrap_or_default();
        // Loki: 429 and every 5xx are retryable
        let err = classify_http_push(status, retry_after, reason.trim());
        if !err.is_retryable() {
            let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
            if warned.insert(status) {
                tracing::error!(status, reason = %reason.trim(), "loki rejected a push (permanent; not retried; further rejections with this status are only counted)");
            }
        }
        Err(err)
    }
}

/// Loki's JSON push body: `{"streams":[{"stream":{…},"values":[["<ns>","<line>",{…}]]}]}`.
pub fn push_json(push: &PushRequest) -> serde_json::Value {
    let streams: Vec<serde_json::Value> = push
        .streams
        .iter()
        .map(|s| {
            let labels = parse_selector(&s.labels).unwrap_or_default();
            let values: Vec<serde_json::Value> = s
                .entries
                .iter()
                .map(|e| {
                    let ts = e
                        .timestamp
                        .as_ref()
                        .map(|t| t.seconds as u128 * 1_000_000_000 + t.nanos as u128)
                        .unwrap_or(0);
                    let mut v = vec![serde_json::json!(ts.to_string()), serde_json::json!(e.line)];
                    if !e.structured_metadata.is_empty() {
                        let m: serde_json::Map<String, serde_json::Value> = e
                            .structured_metadata
                            .iter()
                            .map(|p| (p.name.clone(), serde_json::Value::String(p.value.clone())))
                            .collect();
                        v.push(serde_json::Value::Object(m));
                    }
                    serde_json::Value::Array(v)
                })
                .collect();
            serde_json::json!({ "stream": labels, "values": values })
        })
        .collect();
    serde_json::json!({ "streams": streams })
}
