//! Counts OTLP items by walking the protobuf wire format, without decoding or allocating.
//! The null sink uses it so that receiving costs almost nothing next to the gateway under test.

use otelgw::data::Signal;

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Calls `f(field, bytes)` for every length-delimited field; skips the others.
fn each_len_field(buf: &[u8], mut f: impl FnMut(u64, &[u8])) -> Option<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = varint(buf, &mut pos)? as usize;
                let end = pos.checked_add(len)?;
                f(field, buf.get(pos..end)?);
                pos = end;
            }
            _ => return None,
        }
    }
    Some(())
}

/// Items in an encoded export request: spans, metric data points, or log records.
pub fn count_items(signal: Signal, msg: &[u8]) -> u64 {
    let mut n = 0u64;
    let _ = each_len_field(msg, |f, resource| {
        if f != 1 {
            return;
        }
        let _ = each_len_field(resource, |f, scope| {
            if f != 2 {
                return;
            }
            let _ = each_len_field(scope, |f, item| {
                if f != 2 {
                    return;
                }
                match signal {
                    Signal::Traces | Signal::Logs => n += 1,
                    Signal::Metrics => {
                        let _ = each_len_field(item, |f, data| {
                            if matches!(f, 5 | 7 | 9 | 10 | 11) {
                                let _ = each_len_field(data, |f, _| {
                                    if f == 1 {
                                        n += 1
                                    }
                                });
                            }
                        });
                    }
                }
            });
        });
    });
    n
}

/// Log lines in a Loki `PushRequest` (protobuf, already inflated): `streams` (1) → `entries` (2).
pub fn count_loki_entries(msg: &[u8]) -> u64 {
    let mut n = 0u64;
    let _ = each_len_field(msg, |f, stream| {
        if f != 1 {
            return;
        }
        let _ = each_len_field(stream, |f, _| {
            if f == 2 {
                n += 1;
            }
        });
    });
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use otelgw::data::Telemetry;
    use otelgw::testdata;

    #[test]
    fn counts_match_the_decoded_counts() {
        for t in [
            Telemetry::Traces(testdata::traces(1, 3, 17)),
            Telemetry::Logs(testdata::logs(2, 2, 9)),
            Telemetry::Metrics(testdata::metrics(3, 2, 4)),
        ] {
            assert_eq!(
                count_items(t.signal(), &t.encode_to_bytes()),
                t.item_count(),
                "{:?}",
                t.signal()
            );
        }
    }

    #[test]
    fn loki_lines_are_counted_across_streams() {
        use loki_api::logproto::{EntryAdapter, PushRequest, StreamAdapter};
        use loki_api::prost::Message as _;
        let stream = |lines: usize| StreamAdapter {
            labels: r#"{service_name="shop"}"#.into(),
            entries: (0..lines)
                .map(|i| EntryAdapter {
                    line: format!("line {i}"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let push = PushRequest {
            streams: vec![stream(3), stream(0), stream(5)],
        };
        assert_eq!(count_loki_entries(&push.encode_to_vec()), 8);
    }
}
