//! gRPC plumbing shared by the OTLP receiver, the OTLP exporter and the tests:
//! - [`status`]: `google.rpc.Status` with `RetryInfo`, in protobuf and OTLP/JSON;
//! - [`codec`]: one pass-through codec, raw bytes on one side and a prost message on the other
//!   (the receiver takes requests as the bytes that arrived; tests send bytes as they are);
//! - [`unary`]: a unary call whose request message goes out as the caller's bytes, without the
//!   copy tonic's encoder makes (the exporter's send path).

pub mod codec;
pub mod status;
pub mod unary;
