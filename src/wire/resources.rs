//! Editing the resources of an encoded request while every other byte stays as it came.
//!
//! All three export requests keep their resource groups in field 1, and each group
//! (`ResourceSpans`, `ResourceMetrics`, `ResourceLogs`) keeps its resource in field 1. So a
//! processor that reads and edits only resources (`resource`) needs no decode of the items: each
//! group's resource is decoded (occurrences merged, as prost merges them), edited, encoded again
//! in front of the group's other fields, which are copied verbatim. The result decodes to what
//! decoding, editing and re-encoding the whole request gives (property-tested below), at the cost
//! of one copy of the request.

use bytes::{BufMut, Bytes, BytesMut};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::encoding::{encode_varint, encoded_len_varint};
use prost::Message;

use super::{delimited, key, skip, RECURSION_LIMIT, WT_LEN};

/// Calls `edit` on the resource of every resource group of the encoded export request `buf`
/// and returns the request with the edited resources. `None` when `buf` is not a well-formed
/// request — [`super::scan`] accepted it, so that does not happen; the caller then decodes.
pub fn edit_resources(buf: &[u8], mut edit: impl FnMut(&mut Option<Resource>)) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(buf.len() + 64);
    // byte ranges of one group's other fields (adjacent ones joined), reused across groups
    let mut others: Vec<(usize, usize)> = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let start = rest;
        let (tag, wt) = key(&mut rest).ok()?;
        if tag == 1 && wt == WT_LEN {
            let group = delimited(&mut rest).ok()?;
            edit_group(group, &mut out, &mut others, &mut edit)?;
        } else {
            // not a field of any OTLP version: kept as it came
            skip(wt, tag, &mut rest, RECURSION_LIMIT).ok()?;
            out.extend_from_slice(&start[..start.len() - rest.len()]);
        }
    }
    Some(out.freeze())
}

fn edit_group(
    group: &[u8],
    out: &mut BytesMut,
    others: &mut Vec<(usize, usize)>,
    edit: &mut impl FnMut(&mut Option<Resource>),
) -> Option<()> {
    let mut resource: Option<Resource> = None;
    others.clear();
    let mut g = group;
    while !g.is_empty() {
        let from = group.len() - g.len();
        let (tag, wt) = key(&mut g).ok()?;
        if tag == 1 && wt == WT_LEN {
            let r = delimited(&mut g).ok()?;
            resource
                .get_or_insert_with(Default::default)
                .merge(r)
                .ok()?;
        } else {
            skip(wt, tag, &mut g, RECURSION_LIMIT).ok()?;
            let to = group.len() - g.len();
            match others.last_mut() {
                Some(last) if last.1 == from => last.1 = to,
                _ => others.push((from, to)),
            }
        }
    }
    edit(&mut resource);
    let resource_len = resource.as_ref().map(|r| r.encoded_len());
    let resource_field = resource_len.map_or(0, |l| 1 + encoded_len_varint(l as u64) + l);
    let others_len: usize = others.iter().map(|(a, b)| b - a).sum();
    out.put_u8(0x0a);
    encode_varint((resource_field + others_len) as u64, out);
    if let Some(r) = &resource {
        out.put_u8(0x0a);
        r.encode_length_delimited(out).ok()?;
    }
    for &(a, b) in others.iter() {
        out.extend_from_slice(&group[a..b]);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Signal, Telemetry};
    use crate::testdata;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use proptest::prelude::*;

    /// The edit under test: add an attribute, drop the first one, and give a missing resource
    /// one (as the `resource` processor does).
    fn edit(r: &mut Option<Resource>) {
        let r = r.get_or_insert_with(Default::default);
        if !r.attributes.is_empty() {
            r.attributes.remove(0);
        }
        r.attributes
            .push(testdata::kv("edited", testdata::s("yes")));
    }

    fn check(signal: Signal, bytes: &[u8]) {
        let mut decoded = Telemetry::decode_proto(signal, bytes).unwrap();
        for r in decoded.resources_mut() {
            edit(r);
        }
        let out = edit_resources(bytes, edit).unwrap();
        assert_eq!(Telemetry::decode_proto(signal, &out).unwrap(), decoded);
    }

    fn sample(signal: Signal, seed: u64, groups: usize, per: usize) -> Telemetry {
        match signal {
            Signal::Traces => Telemetry::Traces(testdata::traces(seed, groups, per)),
            Signal::Metrics => Telemetry::Metrics(testdata::metrics(seed, groups, per)),
            Signal::Logs => Telemetry::Logs(testdata::logs(seed, groups, per)),
        }
    }

    proptest! {
        #[test]
        fn editing_bytes_equals_editing_the_decoded_request(
            seed in 0u64..1000, groups in 0usize..4, per in 0usize..6, sig in 0usize..3,
            drop_resource in any::<bool>(),
        ) {
            let signal = Signal::ALL[sig];
            let mut t = sample(signal, seed, groups, per);
            if drop_resource {
                if let Some(r) = t.resources_mut().into_iter().next() {
                    *r = None;
                }
            }
            let bytes = t.encode_to_bytes();
            check(signal, &bytes);
            // a canonical request comes out byte for byte as the decoded path encodes it
            let mut decoded = t.clone();
            for r in decoded.resources_mut() {
                edit(r);
            }
            prop_assert_eq!(edit_resources(&bytes, edit).unwrap(), decoded.encode_to_bytes());
        }
    }

    #[test]
    fn split_resources_unknown_fields_and_odd_order_decode_alike() {
        // a group with its scope first, the resource in two pieces around it, an unknown field
        // in the group and one at the top level
        let t = testdata::traces(7, 1, 3);
        let g = &t.resource_spans[0];
        let res = g.resource.clone().unwrap();
        let (a, b) = res.attributes.split_at(1);
        let part = |attrs: &[KeyValue]| {
            Resource {
                attributes: attrs.to_vec(),
                ..Default::default()
            }
            .encode_to_vec()
        };
        let mut group = Vec::new();
        for s in &g.scope_spans {
            prost::encoding::message::encode(2, s, &mut group);
        }
        prost::encoding::bytes::encode(1, &part(a), &mut group);
        prost::encoding::uint64::encode(99, &7, &mut group);
        prost::encoding::bytes::encode(1, &part(b), &mut group);
        let mut req = Vec::new();
        prost::encoding::bytes::encode(1, &group, &mut req);
        prost::encoding::string::encode(1000, &"future".to_string(), &mut req);
        prost::encoding::bytes::encode(1, &group, &mut req);
        check(Signal::Traces, &req);
        let out = edit_resources(&req, edit).unwrap();
        assert!(
            out.windows(6).any(|w| w == b"future"),
            "unknown fields are kept"
        );
    }

    #[test]
    fn malformed_bytes_give_none() {
        assert!(edit_resources(&[0x0a, 0x05, 0x0a], edit).is_none());
        assert!(edit_resources(&[0x0a], edit).is_none());
    }
}
