//! Prometheus remote-write 1.0 wire types (`proto/prometheus/remote.proto`, the subset of
//! `prompb` otelgw sends) as hand-written prost structs, and the body: the encoded
//! `WriteRequest`, snappy block-compressed.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// [`MetricType`] as its number.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `MetricMetadata.MetricType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum MetricType {
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    Summary = 5,
    Info = 6,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// One series: labels sorted by name (`__name__` among them), no duplicates.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
}

#[derive(Clone, PartialEq, Eq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Prometheus' staleness marker: a NaN with this exact bit pattern ends a series.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// The request body: protobuf, snappy block format (not the framed format).
pub fn body(req: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads protobuf fields by hand (tag, wire type, payload), independent of prost.
    fn fields(mut b: &[u8]) -> Vec<(u32, u8, Vec<u8>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            v
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let (tag, wt) = ((key >> 3) as u32, (key & 7) as u8);
            let payload = match wt {
                0 => varint(&mut b).to_le_bytes().to_vec(),
                1 => {
                    let (p, rest) = b.split_at(8);
                    b = rest;
                    p.to_vec()
                }
                2 => {
                    let n = varint(&mut b) as usize;
                    let (p, rest) = b.split_at(n);
                    b = rest;
                    p.to_vec()
                }
                w => panic!("unexpected wire type {w}"),
            };
            out.push((tag, wt, payload));
        }
        out
    }

    #[test]
    fn bytes_follow_the_schema() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    Label {
                        name: "job".into(),
                        value: "a".into(),
                    },
                ],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: 1_700_000_000_123,
                }],
                exemplars: vec![],
            }],
            metadata: vec![MetricMetadata {
                r#type: MetricType::Gauge as i32,
                metric_family_name: "up".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        };
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body(&req).unwrap())
            .unwrap();
        let top = fields(&raw);
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].0, top[0].1), (1, 2));
        assert_eq!((top[1].0, top[1].1), (3, 2));
        let ts = fields(&top[0].2);
        assert_eq!(ts.iter().filter(|f| f.0 == 1).count(), 2);
        let first = fields(&ts[0].2);
        assert_eq!(first[0], (1, 2, b"__name__".to_vec()));
        assert_eq!(first[1], (2, 2, b"up".to_vec()));
        let sample = fields(&ts.iter().find(|f| f.0 == 2).unwrap().2);
        assert_eq!(sample[0].0, 1);
        assert_eq!(sample[0].1, 1);
        assert_eq!(
            f64::from_le_bytes(sample[0].2.clone().try_into().unwrap()),
            1.5
        );
        assert_eq!(
            u64::from_le_bytes(sample[1].2.clone().try_into().unwrap()),
            1_700_000_000_123
        );
        let md = fields(&top[1].2);
        assert_eq!(md[0].0, 1);
        assert_eq!(u64::from_le_bytes(md[0].2.clone().try_into().unwrap()), 2);
        assert_eq!(md[1], (2, 2, b"up".to_vec()));
        assert_eq!(md[2], (4, 2, b"h".to_vec()));
    }
}
