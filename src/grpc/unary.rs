//! A unary gRPC call whose request message is the caller's bytes, sent without a copy.
//!
//! tonic's client encodes every message into its own buffer (`EncodeBuf`), so an exporter that
//! already holds the protobuf would hold it twice for as long as the call lasts — for a peer
//! that stops reading, until the timeout — and that copy appears after the memory gate admitted
//! the data. Here the 5-byte gRPC frame header and the message go out as two HTTP/2 data frames
//! referencing the caller's [`Bytes`]; only compression makes a (smaller) new buffer. The call
//! runs on a tonic [`Channel`] (connection management, TLS, HTTP/2), and the answer is read as
//! tonic would: `grpc-status` from the headers (trailers-only) or the trailers, the response
//! message decoded as `R`.

use std::time::Duration;

use bytes::{Buf, Bytes};
use http::uri::PathAndQuery;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, StreamBody};
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::ServiceExt;

/// Sends `message` as the request of the unary method `path` and decodes the answer.
pub async fn call<R: prost::Message + Default>(
    channel: Channel,
    path: PathAndQuery,
    metadata: &MetadataMap,
    timeout: Duration,
    compression: Option<CompressionEncoding>,
    message: Bytes,
) -> Result<R, Status> {
    let (flag, message) = match compression {
        None => (0u8, message),
        Some(c) => (1u8, compress(c, &message)?),
    };
    let len = u32::try_from(message.len())
        .map_err(|_| Status::resource_exhausted("message larger than 4 GiB"))?;
    let mut header = [0u8; 5];
    header[0] = flag;
    header[1..].copy_from_slice(&len.to_be_bytes());
    let frames = [header.to_vec().into(), message]
        .map(|b: Bytes| Ok::<_, std::convert::Infallible>(http_body::Frame::data(b)));
    let body = tonic::body::Body::new(StreamBody::new(futures_util::stream::iter(frames)));

    let mut req = Request::post(http::Uri::from(path))
        .version(http::Version::HTTP_2)
        .body(body)
        .map_err(|e| Status::internal(format!("cannot build the request: {e}")))?;
    let headers = req.headers_mut();
    headers.extend(metadata.clone().into_headers());
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    if let Ok(v) = HeaderValue::from_str(&grpc_timeout(timeout)) {
        headers.insert("grpc-timeout", v);
    }
    if let Some(c) = compression {
        headers.insert("grpc-encoding", HeaderValue::from_static(encoding_name(c)));
    }

    // a transport failure (connect, reset, closed) is worth a retry, as OTLP exporters treat it
    let resp = channel
        .oneshot(req)
        .await
        .map_err(|e| Status::unavailable(format!("transport error: {e}")))?;
    let (parts, body) = resp.into_parts();
    // trailers-only answers carry the status in the headers
    if let Some(s) = Status::from_header_map(&parts.headers) {
        if s.code() != Code::Ok {
            return Err(s);
        }
    }
    if parts.status != http::StatusCode::OK {
        return Err(from_http_status(parts.status));
    }
    // answers are small: cap them as tonic does; a reset mid-answer is worth a retry
    let collected = http_body_util::Limited::new(body, MAX_ANSWER + 5)
        .collect()
        .await
        .map_err(|e| Status::unavailable(format!("reading the answer failed: {e}")))?;
    let trailers = collected.trailers().cloned();
    let mut data = collected.to_bytes();
    match trailers.as_ref().and_then(Status::from_header_map) {
        Some(s) if s.code() != Code::Ok => return Err(s),
        Some(_) => {}
        None if Status::from_header_map(&parts.headers).is_some() => {}
        None => return Err(Status::internal("the answer carried no grpc-status")),
    }
    if data.len() < 5 {
        return Err(Status::internal("the answer carried no message"));
    }
    let compressed = match data.get_u8() {
        0 => false,
        1 => true,
        f => {
            return Err(Status::internal(format!(
                "bad compressed flag {f} in the answer"
            )))
        }
    };
    let n = data.get_u32() as usize;
    if data.len() != n {
        return Err(Status::internal(
            "the answer is not exactly one length-prefixed message",
        ));
    }
    let msg = data.split_to(n);
    let msg = if compressed {
        let enc = parts
            .headers
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        decompress(enc, &msg)?
    } else {
        msg
    };
    R::decode(msg).map_err(|e| Status::internal(format!("cannot decode the answer: {e}")))
}

fn encoding_name(c: CompressionEncoding) -> &'static str {
    match c {
        CompressionEncoding::Zstd => "zstd",
        CompressionEncoding::Deflate => "deflate",
        _ => "gzip",
    }
}

fn compress(c: CompressionEncoding, b: &[u8]) -> Result<Bytes, Status> {
    use std::io::Write;
    let fail = |e: std::io::Error| Status::internal(format!("cannot compress: {e}"));
    Ok(Bytes::from(match c {
        CompressionEncoding::Zstd => zstd::bulk::compress(b, 0).map_err(fail)?,
        CompressionEncoding::Deflate => {
            let mut w = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(b).map_err(fail)?;
            w.finish().map_err(fail)?
        }
        _ => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(b).map_err(fail)?;
            w.finish().map_err(fail)?
        }
    }))
}

/// The largest answer read (tonic's default cap for decoded messages).
const MAX_ANSWER: usize = 4 << 20;

/// `grpc-timeout`: at most 8 digits, in the finest unit that fits.
fn grpc_timeout(t: Duration) -> String {
    let ms = t.as_millis().max(1);
    if ms <= 99_999_999 {
        return format!("{ms}m");
    }
    let s = t.as_secs();
    if s <= 99_999_999 {
        format!("{s}S")
    } else {
        format!("{}H", (s / 3600).min(99_999_999))
    }
}

/// Inflates a compressed answer, refusing one that inflates past [`MAX_ANSWER`].
fn decompress(encoding: &str, b: &[u8]) -> Result<Bytes, Status> {
    use std::io::Read;
    const MAX: u64 = MAX_ANSWER as u64 + 1;
    let fail = |e: std::io::Error| Status::internal(format!("cannot inflate the answer: {e}"));
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(b)
            .take(MAX)
            .read_to_end(&mut out)
            .map_err(fail)?,
        "deflate" => flate2::read::ZlibDecoder::new(b)
            .take(MAX)
            .read_to_end(&mut out)
            .map_err(fail)?,
        "zstd" => zstd::stream::read::Decoder::new(b)
            .map_err(fail)?
            .take(MAX)
            .read_to_end(&mut out)
            .map_err(fail)?,
        other => {
            return Err(Status::internal(format!(
                "the answer is compressed with {other:?}, which was not asked for"
            )))
        }
    };
    if out.len() > MAX_ANSWER {
        return Err(Status::internal("the answer inflates past 4 MiB"));
    }
    Ok(Bytes::from(out))
}

/// The gRPC status for an HTTP answer that is not 200 (the gRPC spec's mapping).
fn from_http_status(s: http::StatusCode) -> Status {
    let code = match s.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(code, format!("http status {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_fits_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_millis(1500)), "1500m");
        assert_eq!(grpc_timeout(Duration::ZERO), "1m");
        assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
        let far = grpc_timeout(Duration::from_secs(u64::MAX / 2));
        assert!(far.ends_with('H') && far.len() <= 9, "{far}");
    }

    #[test]
    fn an_answer_that_inflates_past_the_cap_is_refused() {
        use std::io::Write;
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        w.write_all(&vec![0u8; MAX_ANSWER + 10]).unwrap();
        let gz = w.finish().unwrap();
        assert!(decompress("gzip", &gz).is_err());
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        w.write_all(b"small").unwrap();
        assert_eq!(
            &decompress("gzip", &w.finish().unwrap()).unwrap()[..],
            b"small"
        );
    }
}
