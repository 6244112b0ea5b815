//! Request bodies: content encodings (gzip, zstd, deflate, snappy) decompressed under a hard
//! cap, and OTLP protobuf / JSON decoding. The cap is enforced while decompressing, so a small
//! compressed body that would inflate past it (a "gzip bomb") costs at most `cap` bytes.

use std::io::Read;

use bytes::Bytes;

use crate::data::{Encoded, Payload, Signal, Telemetry};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error(
        "unsupported content encoding {0:?} (supported: gzip, zstd, deflate, snappy, identity)"
    )]
    UnsupportedEncoding(String),
    #[error("cannot decompress {encoding} body: {reason}")]
    Corrupt {
        encoding: &'static str,
        reason: String,
    },
    #[error("cannot decode protobuf body: {0}")]
    Protobuf(String),
    #[error("cannot decode json body: {0}")]
    Json(String),
}

impl DecodeError {
    /// A low-cardinality label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::UnsupportedEncoding(_) => "unsupported_encoding",
            DecodeError::Corrupt { .. } => "corrupt_compression",
            DecodeError::Protobuf(_) => "bad_protobuf",
            DecodeError::Json(_) => "bad_json",
        }
    }
}

/// A supported `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    Identity,
    Gzip,
    Zstd,
    Deflate,
    Snappy,
}

impl ContentEncoding {
    pub fn parse(header: Option<&str>) -> Result<ContentEncoding, DecodeError> {
        let v = header
            .map(|h| h.trim().to_ascii_lowercase())
            .unwrap_or_default();
        Ok(match v.as_str() {
            "" | "identity" => ContentEncoding::Identity,
            "gzip" | "x-gzip" => ContentEncoding::Gzip,
            "zstd" => ContentEncoding::Zstd,
            "deflate" => ContentEncoding::Deflate,
            "snappy" => ContentEncoding::Snappy,
            _ => return Err(DecodeError::UnsupportedEncoding(v)),
        })
    }
}

/// Decompresses `body` into at most `cap` bytes.
pub fn decompress(
    encoding: ContentEncoding,
    body: &[u8],
    cap: usize,
) -> Result<Vec<u8>, DecodeError> {
    fn capped<R: Read>(
        r: R,
        cap: usize,
        encoding: &'static str,
        hint: usize,
    ) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::with_capacity(hint.min(cap));
        // Read one byte past the cap so "exactly cap" is allowed and "more" is detected.
        r.take(cap as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| DecodeError::Corrupt {
                encoding,
                reason: e.to_string(),
            })?;
        if out.len() > cap {
            return Err(DecodeError::TooLarge { limit: cap });
        }
        Ok(out)
    }
    match encoding {
        ContentEncoding::Identity => {
            if body.len() > cap {
                return Err(DecodeError::TooLarge { limit: cap });
            }
            Ok(body.to_vec())
        }
        ContentEncoding::Gzip => capped(
            flate2::read::MultiGzDecoder::new(body),
            cap,
            "gzip",
            body.len() * 4,
        ),
        ContentEncoding::Deflate => {
            // HTTP "deflate" is zlib-wrapped, but some clients send raw deflate; accept both.
            match capped(
                flate2::read::ZlibDecoder::new(body),
                cap,
                "deflate",
                body.len() * 4,
            ) {
                Err(DecodeError::Corrupt { .. }) => capped(
                    flate2::read::DeflateDecoder::new(body),
                    cap,
                    "deflate",
                    body.len() * 4,
                ),
                other => other,
            }
        }
        ContentEncoding::Zstd => {
            let dec = zstd::stream::read::Decoder::new(body).map_err(|e| DecodeError::Corrupt {
                encoding: "zstd",
                reason: e.to_string(),
            })?;
            capped(dec, cap, "zstd", body.len() * 4)
        }
        ContentEncoding::Snappy => {
            // Snappy block format (what the Collector's confighttp sends); the framed format
            // starts with the stream identifier chunk 0xff 0x06 0x00 0x00 "sNaPpY".
            if body.starts_with(b"\xff\x06\x00\x00sNaPpY") {
                return capped(
                    snap::read::FrameDecoder::new(body),
                    cap,
                    "snappy",
                    body.len() * 4,
                );
            }
            let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Corrupt {
                encoding: "snappy",
                reason: e.to_string(),
            })?;
            if len > cap {
                return Err(DecodeError::TooLarge { limit: cap });
            }
            snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|e| DecodeError::Corrupt {
                    encoding: "snappy",
                    reason: e.to_string(),
                })
        }
    }
}

/// The two OTLP/HTTP payload encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadEncoding {
    Protobuf,
    Json,
}

impl PayloadEncoding {
    /// From a `Content-Type` header; parameters (`; charset=utf-8`) are ignored.
    pub fn from_content_type(ct: Option<&str>) -> Option<PayloadEncoding> {
        let mime = ct?.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(PayloadEncoding::Protobuf),
            "application/json" => Some(PayloadEncoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PayloadEncoding::Protobuf => "application/x-protobuf",
            PayloadEncoding::Json => "application/json",
        }
    }
}

/// Decodes an OTLP payload.
pub fn decode_payload(
    signal: Signal,
    enc: PayloadEncoding,
    bytes: &[u8],
) -> Result<Telemetry, DecodeError> {
    match enc {
        PayloadEncoding::Protobuf => {
            Telemetry::decode_proto(signal, bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
        }
        PayloadEncoding::Json => {
            Telemetry::decode_json(signal, bytes).map_err(|e| DecodeError::Json(e.to_string()))
        }
    }
}

/// Turns a request body into what the pipelines take. Protobuf for pipelines that only forward
/// it (`reads_items` false: no component reads the items) stays the client's bytes after
/// [`crate::wire::scan`] checked them as strictly as a decode would; a request with malformed
/// ids is decoded instead, so the request path can remove just those items. Everything else is
/// decoded.
pub fn check_or_decode(
    signal: Signal,
    enc: PayloadEncoding,
    bytes: Bytes,
    reads_items: bool,
) -> Result<Payload, DecodeError> {
    if !reads_items && enc == PayloadEncoding::Protobuf {
        let scan =
            crate::wire::scan(signal, &bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        if scan.bad_ids == 0 {
            return Ok(Payload::Encoded(Encoded {
                signal,
                items: scan.items,
                bytes,
            }));
        }
    }
    decode_payload(signal, enc, &bytes).map(Payload::Decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = b"hello otlp ".repeat(100);
        let z = zstd::encode_all(&data[..], 3).unwrap();
        let mut d = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(&data).unwrap();
        let d = d.finish().unwrap();
        let s = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        for (enc, body) in [
            (ContentEncoding::Gzip, gzip(&data)),
            (ContentEncoding::Zstd, z),
            (ContentEncoding::Deflate, d),
            (ContentEncoding::Snappy, s),
            (ContentEncoding::Identity, data.clone()),
        ] {
            assert_eq!(decompress(enc, &body, 1 << 20).unwrap(), data, "{enc:?}");
        }
    }

    #[test]
    fn bombs_stop_at_the_cap() {
        let zeros = vec![0u8; 64 << 20];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 200 << 10);
        assert_eq!(
            decompress(ContentEncoding::Gzip, &bomb, 1 << 20),
            Err(DecodeError::TooLarge { limit: 1 << 20 })
        );
        let zbomb = zstd::encode_all(&zeros[..], 3).unwrap();
        assert_eq!(
            decompress(ContentEncoding::Zstd, &zbomb, 1 << 20),
            Err(DecodeError::TooLarge { limit: 1 << 20 })
        );
        // exactly the cap is fine
        assert_eq!(
            decompress(ContentEncoding::Gzip, &gzip(&[1; 100]), 100)
                .unwrap()
                .len(),
            100
        );
    }

    #[test]
    fn truncated_and_unknown_encodings_are_errors() {
        let g = gzip(&[7u8; 10_000]);
        let err = decompress(ContentEncoding::Gzip, &g[..g.len() / 2], 1 << 20).unwrap_err();
        assert_eq!(err.kind(), "corrupt_compression");
        assert_eq!(
            ContentEncoding::parse(Some("br")).unwrap_err().kind(),
            "unsupported_encoding"
        );
        assert_eq!(
            ContentEncoding::parse(Some(" GZIP ")).unwrap(),
            ContentEncoding::Gzip
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PayloadEncoding::from_content_type(Some("application/json; charset=utf-8")),
            Some(PayloadEncoding::Json)
        );
        assert_eq!(PayloadEncoding::from_content_type(Some("text/plain")), None);
        assert_eq!(PayloadEncoding::from_content_type(None), None);
    }
}
