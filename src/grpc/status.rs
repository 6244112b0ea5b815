//! `google.rpc.Status` and `RetryInfo`: the error bodies OTLP receivers send, in protobuf or
//! JSON, and the gRPC status details that carry a retry hint.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<prost_types::Duration>,
}

pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// gRPC codes used here (numeric values from `google.rpc.Code`).
pub mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNIMPLEMENTED: i32 = 12;
}

/// Builds a status, adding a `RetryInfo` detail when a retry delay is given.
pub fn rpc_status(code: i32, message: &str, retry_after: Option<Duration>) -> RpcStatus {
    let details = retry_after
        .map(|d| {
            let info = RetryInfo {
                retry_delay: Some(prost_types::Duration {
                    seconds: d.as_secs() as i64,
                    nanos: d.subsec_nanos() as i32,
                }),
            };
            vec![prost_types::Any {
                type_url: RETRY_INFO_TYPE.to_string(),
                value: info.encode_to_vec(),
            }]
        })
        .unwrap_or_default();
    RpcStatus {
        code,
        message: message.to_string(),
        details,
    }
}

/// A tonic status with the encoded `google.rpc.Status` as its details (so clients that read
/// `grpc-status-details-bin` find `RetryInfo`).
pub fn grpc_status(code: i32, message: &str, retry_after: Option<Duration>) -> tonic::Status {
    let st = rpc_status(code, message, retry_after);
    tonic::Status::with_details(
        tonic::Code::from_i32(code),
        message,
        Bytes::from(st.encode_to_vec()),
    )
}

/// The retry delay a peer's gRPC status carries in `RetryInfo`, if any.
pub fn retry_delay_of(status: &tonic::Status) -> Option<Duration> {
    let st = RpcStatus::decode(status.details()).ok()?;
    st.details
        .iter()
        .find(|a| a.type_url.ends_with("google.rpc.RetryInfo"))
        .and_then(|a| RetryInfo::decode(a.value.as_slice()).ok())
        .and_then(|ri| ri.retry_delay)
        .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
}

/// The status as OTLP/JSON (`{"code":8,"message":"…","details":[{"@type":…,"retryDelay":"5s"}]}`).
pub fn status_json(code: i32, message: &str, retry_after: Option<Duration>) -> Vec<u8> {
    let mut v = serde_json::json!({ "code": code, "message": message });
    if let Some(d) = retry_after {
        v["details"] = serde_json::json!([{
            "@type": RETRY_INFO_TYPE,
            "retryDelay": format!("{}s", d.as_secs_f64()),
        }]);
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips_through_grpc_status() {
        let st = grpc_status(
            code::RESOURCE_EXHAUSTED,
            "memory limit",
            Some(Duration::from_secs(3)),
        );
        assert_eq!(st.code(), tonic::Code::ResourceExhausted);
        assert_eq!(retry_delay_of(&st), Some(Duration::from_secs(3)));
        let plain = grpc_status(code::INVALID_ARGUMENT, "bad", None);
        assert_eq!(retry_delay_of(&plain), None);
        let j: serde_json::Value =
            serde_json::from_slice(&status_json(8, "x", Some(Duration::from_secs(2)))).unwrap();
        assert_eq!(j["details"][0]["retryDelay"], "2s");
    }
}
