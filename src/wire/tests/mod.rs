//! `scan` against prost: the oracle is `Telemetry::decode_proto` + `item_count` +
//! `drop_invalid_ids`.

use super::*;
use crate::data::Telemetry;
use crate::processors::Rejections;
use crate::receivers::handle::drop_invalid_ids;
use crate::testdata::{self, Rng};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric, number_data_point, Exemplar,
};
use opentelemetry_proto::tonic::trace::v1::span;
use proptest::prelude::*;

// ---- the oracle ----

fn oracle(sig: Signal, b: &[u8]) -> Option<Scan> {
    let mut t = Telemetry::decode_proto(sig, b).ok()?;
    let items = t.item_count();
    let mut r = Rejections::default();
    drop_invalid_ids(&mut t, &mut r);
    Some(Scan {
        items,
        bad_ids: r.count,
    })
}

/// Asserts `scan` agrees with prost; returns whether prost accepted.
fn check(sig: Signal, b: &[u8]) -> bool {
    let got = scan(sig, b);
    let want = oracle(sig, b);
    match (&got, &want) {
        (Ok(g), Some(w)) => assert_eq!(g, w, "{sig}: counts differ for {}", hex(b)),
        (Err(_), None) => {}
        _ => panic!("{sig}: scan {got:?} but prost {want:?} for {}", hex(b)),
    }
    want.is_some()
}

fn hex(b: &[u8]) -> String {
    if b.len() > 4096 {
        return format!("<{} bytes>", b.len());
    }
    crate::data::hex(b)
}

fn encode(t: &Telemetry) -> Vec<u8> {
    t.encode_to_bytes().to_vec()
}

// ---- a generic protobuf tree, independent of the schema under test ----

#[derive(Clone, Debug)]
enum V {
    Varint(u64),
    F64(u64),
    F32(u32),
    Len(Vec<u8>),
    Msg(Vec<F>),
    Group(Vec<F>),
}

#[derive(Clone, Debug)]
struct F {
    tag: u32,
    v: V,
}

fn f(tag: u32, v: V) -> F {
    F { tag, v }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&x, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(x & 0x7f) << (7 * i);
        if x < 0x80 {
            return Some(v);
        }
    }
    None
}

fn put_key(out: &mut Vec<u8>, tag: u32, wt: u32) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wt));
}

fn enc_fields(fields: &[F], out: &mut Vec<u8>) {
    for x in fields {
        match &x.v {
            V::Varint(v) => {
                put_key(out, x.tag, 0);
                put_varint(out, *v);
            }
            V::F64(v) => {
                put_key(out, x.tag, 1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            V::F32(v) => {
                put_key(out, x.tag, 5);
                out.extend_from_slice(&v.to_le_bytes());
            }
            V::Len(b) => {
                put_key(out, x.tag, 2);
                put_varint(out, b.len() as u64);
                out.extend_from_slice(b);
            }
            V::Msg(fs) => {
                let inner = enc(fs);
                put_key(out, x.tag, 2);
                put_varint(out, inner.len() as u64);
                out.extend_from_slice(&inner);
            }
            V::Group(fs) => {
                put_key(out, x.tag, 3);
                enc_fields(fs, out);
                put_key(out, x.tag, 4);
            }
        }
    }
}

fn enc(fields: &[F]) -> Vec<u8> {
    let mut out = vec![];
    enc_fields(fields, &mut out);
    out
}

/// Parses a message without a schema: a length-delimited payload that parses as fields is taken
/// for a message (strings and ids sometimes are; that only makes mutations more varied).
fn parse(mut b: &[u8], depth: u32) -> Option<Vec<F>> {
    let mut out = vec![];
    while !b.is_empty() {
        let k = get_varint(&mut b)?;
        let (tag, wt) = ((k >> 3) as u32, (k & 7) as u32);
        if tag == 0 || k > u64::from(u32::MAX) {
            return None;
        }
        let v = match wt {
            0 => V::Varint(get_varint(&mut b)?),
            1 => {
                let (h, t) = b.split_at_checked(8)?;
                b = t;
                V::F64(u64::from_le_bytes(h.try_into().ok()?))
            }
            5 => {
                let (h, t) = b.split_at_checked(4)?;
                b = t;
                V::F32(u32::from_le_bytes(h.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(get_varint(&mut b)?).ok()?;
                let (h, t) = b.split_at_checked(len)?;
                b = t;
                match (depth > 0 && !h.is_empty()).then(|| parse(h, depth - 1)) {
                    Some(Some(fs)) => V::Msg(fs),
                    _ => V::Len(h.to_vec()),
                }
            }
            _ => return None,
        };
        out.push(f(tag, v));
    }
    Some(out)
}

// ---- random inputs ----

fn rand_tag(rng: &mut Rng) -> u32 {
    match rng.below(10) {
        0..=6 => 1 + rng.below(17) as u32,
        7 | 8 => 1 + rng.below(100) as u32,
        _ => 1 + rng.below((1 << 29) - 1) as u32,
    }
}

fn rand_u64(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng.below(2),
        1 => rng.below(300),
        2 => rng.below(1 << 35),
        _ => rng.next_u64(),
    }
}

fn rand_bytes(rng: &mut Rng) -> Vec<u8> {
    let n = match rng.below(4) {
        0 => [0, 1, 7, 8, 9, 15, 16, 17][rng.below(8) as usize],
        1 => rng.below(40) as usize,
        _ => rng.below(12) as usize,
    };
    match rng.below(4) {
        0 => vec![0; n],
        1 => "héllo wörld ✓ abc"
            .bytes()
            .cycle()
            .take(n)
            .collect::<Vec<u8>>(),
        _ => {
            let mut v = rng.bytes(n.max(1));
            v.truncate(n);
            v
        }
    }
}

fn rand_field(rng: &mut Rng, depth: u32) -> F {
    let tag = rand_tag(rng);
    let v = match rng.below(if depth > 0 { 7 } else { 4 }) {
        0 => V::Varint(rand_u64(rng)),
        1 => V::F64(rng.next_u64()),
        2 => V::F32(rng.next_u64() as u32),
        3 => V::Len(rand_bytes(rng)),
        4 | 5 => V::Msg(rand_fields(rng, depth - 1)),
        _ => V::Group(rand_fields(rng, depth - 1)),
    };
    f(tag, v)
}

fn rand_fields(rng: &mut Rng, depth: u32) -> Vec<F> {
    let n = rng.below(5);
    (0..n).map(|_| rand_field(rng, depth)).collect()
}

fn pick_field(fields: &[F], rng: &mut Rng) -> Option<F> {
    if fields.is_empty() {
        return None;
    }
    let x = &fields[rng.below(fields.len() as u64) as usize];
    if let V::Msg(fs) = &x.v {
        if rng.below(3) != 0 {
            if let Some(y) = pick_field(fs, rng) {
                return Some(y);
            }
        }
    }
    Some(x.clone())
}

/// One structural mutation somewhere in the tree; lengths stay consistent.
/// The message is picked by a random walk down the tree, or uniformly among all messages (which
/// reaches rare deep ones, like a summary's quantile values, more often).
fn mutate_tree(fields: &mut Vec<F>, rng: &mut Rng, donor: &Option<F>) {
    if rng.below(2) == 0 {
        let mut k = rng.below(count_msgs(fields) as u64 + 1) as usize;
        if let Some(fs) = nth_msg(fields, &mut k) {
            return mutate_here(fs, rng, donor);
        }
        return mutate_here(fields, rng, donor);
    }
    let msgs: Vec<usize> = (0..fields.len())
        .filter(|&i| matches!(fields[i].v, V::Msg(_)))
        .collect();
    if !msgs.is_empty() && rng.below(4) != 0 {
        let i = msgs[rng.below(msgs.len() as u64) as usize];
        if let V::Msg(fs) = &mut fields[i].v {
            return mutate_tree(fs, rng, donor);
        }
    }
    mutate_here(fields, rng, donor)
}

fn count_msgs(fields: &[F]) -> usize {
    fields
        .iter()
        .map(|x| match &x.v {
            V::Msg(fs) => 1 + count_msgs(fs),
            _ => 0,
        })
        .sum()
}

fn nth_msg<'a>(fields: &'a mut [F], k: &mut usize) -> Option<&'a mut Vec<F>> {
    for x in fields.iter_mut() {
        if let V::Msg(fs) = &mut x.v {
            if *k == 0 {
                return Some(fs);
            }
            *k -= 1;
            if let Some(r) = nth_msg(fs, k) {
                return Some(r);
            }
        }
    }
    None
}

/// One structural mutation of this message's fields.
fn mutate_here(fields: &mut Vec<F>, rng: &mut Rng, donor: &Option<F>) {
    let n = fields.len() as u64;
    let at = |rng: &mut Rng| rng.below(n) as usize;
    match rng.below(11) {
        // duplicate a field, next to itself or elsewhere
        0 | 1 if n > 0 => {
            let i = at(rng);
            let c = fields[i].clone();
            let j = if rng.below(2) == 0 {
                i + 1
            } else {
                rng.below(n + 1) as usize
            };
            fields.insert(j, c);
        }
        2 if n > 0 => {
            fields.remove(at(rng));
        }
        // re-tag: oneof switches, wrong wire types for known fields, unknown fields
        3 if n > 0 => {
            let i = at(rng);
            fields[i].tag = rand_tag(rng);
        }
        // re-type the value
        4 if n > 0 => {
            let i = at(rng);
            let old = std::mem::replace(&mut fields[i].v, V::Varint(0));
            fields[i].v = match old {
                V::Varint(v) => match rng.below(3) {
                    0 => {
                        let mut b = vec![];
                        put_varint(&mut b, v);
                        if rng.below(2) == 0 {
                            put_varint(&mut b, rand_u64(rng));
                        }
                        V::Len(b)
                    }
                    1 => V::F64(v),
                    _ => V::F32(v as u32),
                },
                V::F64(v) => match rng.below(3) {
                    0 => {
                        let mut b = v.to_le_bytes().to_vec();
                        match rng.below(3) {
                            0 => b.extend_from_slice(&rng.next_u64().to_le_bytes()),
                            1 => b.extend_from_slice(&[1, 2, 3, 4]),
                            _ => {}
                        }
                        V::Len(b)
                    }
                    1 => V::Varint(v),
                    _ => V::F32(v as u32),
                },
                V::F32(v) => match rng.below(2) {
                    0 => V::Len(v.to_le_bytes().to_vec()),
                    _ => V::F64(u64::from(v)),
                },
                V::Len(b) => match rng.below(3) {
                    0 => V::Varint(b.len() as u64),
                    1 => V::F64(b.len() as u64),
                    _ => V::Group(vec![]),
                },
                V::Msg(fs) => match rng.below(2) {
                    0 => V::Group(fs),
                    _ => V::Len(enc(&fs)),
                },
                V::Group(fs) => V::Msg(fs),
            };
        }
        // a new payload: random bytes, ids of every length, text
        5 if n > 0 => {
            let i = at(rng);
            match &mut fields[i].v {
                V::Len(b) => *b = rand_bytes(rng),
                V::Msg(fs) => *fs = rand_fields(rng, 2),
                V::Varint(v) | V::F64(v) => *v = rand_u64(rng),
                V::F32(v) => *v = rng.next_u64() as u32,
                V::Group(fs) => *fs = rand_fields(rng, 2),
            }
        }
        // invalid utf-8 in some payload
        6 if n > 0 => {
            let i = at(rng);
            if let V::Len(b) = &mut fields[i].v {
                let bad = [0xff, 0xc3, 0x80, 0xed][rng.below(4) as usize];
                if b.is_empty() || rng.below(2) == 0 {
                    b.push(bad);
                } else {
                    let j = rng.below(b.len() as u64) as usize;
                    b[j] = bad;
                }
            }
        }
        7 if n > 1 => {
            let (i, j) = (at(rng), at(rng));
            fields.swap(i, j);
        }
        // splice in a field from elsewhere in the request
        8 => {
            if let Some(d) = donor {
                let j = rng.below(n + 1) as usize;
                fields.insert(j, d.clone());
            }
        }
        // an unknown (or not) field, groups included
        _ => {
            let x = rand_field(rng, 3);
            let j = rng.below(n + 1) as usize;
            fields.insert(j, x);
        }
    }
}

/// One byte-level mutation.
fn mutate_bytes(b: &mut Vec<u8>, rng: &mut Rng) {
    let n = b.len() as u64;
    match rng.below(6) {
        0 if n > 0 => {
            let i = rng.below(n) as usize;
            b[i] ^= 1 << rng.below(8);
        }
        1 if n > 0 => {
            let i = rng.below(n) as usize;
            b[i] = rng.next_u64() as u8;
        }
        2 => b.truncate(rng.below(n + 1) as usize),
        3 => {
            let i = rng.below(n + 1) as usize;
            let k = 1 + rng.below(4) as usize;
            let ins = rng.bytes(k);
            b.splice(i..i, ins);
        }
        // overwrite a byte with a varint: lengths and keys go wrong in interesting ways
        4 if n > 0 => {
            let i = rng.below(n) as usize;
            let mut v = vec![];
            put_varint(
                &mut v,
                match rng.below(3) {
                    0 => rng.below(n + 4),
                    1 => rng.below(1 << 14),
                    _ => rng.next_u64(),
                },
            );
            b.splice(i..i + 1, v);
        }
        _ if n > 0 => {
            let i = rng.below(n) as usize;
            let j = (i + 1 + rng.below(8) as usize).min(b.len());
            b.drain(i..j);
        }
        _ => {}
    }
}

// ---- valid requests with every field in play ----

fn id(rng: &mut Rng, good: usize) -> Vec<u8> {
    match rng.below(12) {
        0 => vec![],
        1 => vec![0; good],
        2 => {
            let n = 1 + rng.below(20) as usize;
            rng.bytes(n)
        }
        3 => rng.bytes(24 - good),
        _ => rng.bytes(good),
    }
}

fn rand_any(rng: &mut Rng, depth: u32) -> AnyValue {
    use any_value::Value as A;
    let v = match rng.below(if depth > 0 { 10 } else { 7 }) {
        0 => None,
        1 => Some(A::StringValue("wert ✓".into())),
        2 => Some(A::BoolValue(true)),
        3 => Some(A::IntValue(-(rng.below(1 << 40) as i64))),
        4 => Some(A::DoubleValue(1.5)),
        5 => {
            let n = rng.below(9) as usize + 1;
            Some(A::BytesValue(rng.bytes(n)))
        }
        6 => Some(A::StringValueStrindex(rng.below(100) as i32)),
        7 | 8 => Some(A::KvlistValue(KeyValueList {
            values: (0..rng.below(3))
                .map(|i| KeyValue {
                    key: format!("k{i}"),
                    value: Some(rand_any(rng, depth - 1)),
                    key_strindex: rng.below(2) as i32,
                })
                .collect(),
        })),
        _ => Some(A::ArrayValue(ArrayValue {
            values: (0..rng.below(3))
                .map(|_| rand_any(rng, depth - 1))
                .collect(),
        })),
    };
    AnyValue { value: v }
}

fn attrs(rng: &mut Rng) -> Vec<KeyValue> {
    (0..rng.below(3))
        .map(|i| KeyValue {
            key: format!("attr.{i}"),
            value: (rng.below(5) != 0).then(|| rand_any(rng, 3)),
            key_strindex: 0,
        })
        .collect()
}

fn entity_refs(rng: &mut Rng) -> Vec<EntityRef> {
    (0..rng.below(2))
        .map(|_| EntityRef {
            schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            r#type: "service".into(),
            id_keys: vec!["service.name".into(), "service.instance.id".into()],
            description_keys: vec!["service.version".into()],
        })
        .collect()
}

fn rich_traces(seed: u64) -> ExportTraceServiceRequest {
    let mut rng = Rng::new(seed);
    let mut r = testdata::traces(seed, 1 + rng.below(2) as usize, rng.below(4) as usize);
    for rs in &mut r.resource_spans {
        if let Some(res) = &mut rs.resource {
            res.entity_refs = entity_refs(&mut rng);
            res.attributes.extend(attrs(&mut rng));
        }
        for ss in &mut rs.scope_spans {
            for s in &mut ss.spans {
                s.trace_id = id(&mut rng, 16);
                s.span_id = id(&mut rng, 8);
                s.parent_span_id = match rng.below(4) {
                    0 => id(&mut rng, 8),
                    _ => s.parent_span_id.clone(),
                };
                s.trace_state = "rojo=00f067aa0ba902b7".into();
                s.attributes.truncate(rng.below(3) as usize);
                s.attributes.extend(attrs(&mut rng));
                s.dropped_attributes_count = rng.below(3) as u32;
                s.dropped_events_count = rng.below(2) as u32;
                s.dropped_links_count = rng.below(2) as u32;
                s.events.extend((0..rng.below(3)).map(|i| span::Event {
                    time_unix_nano: i,
                    name: "exception".into(),
                    attributes: attrs(&mut rng),
                    dropped_attributes_count: rng.below(2) as u32,
                }));
                s.links = (0..rng.below(3))
                    .map(|_| span::Link {
                        trace_id: id(&mut rng, 16),
                        span_id: id(&mut rng, 8),
                        trace_state: "k=v".into(),
                        attributes: attrs(&mut rng),
                        dropped_attributes_count: 1,
                        flags: 0x300,
                    })
                    .collect();
                if let Some(st) = &mut s.status {
                    st.message = "ünavailable".into();
                }
            }
        }
    }
    r
}

fn rich_logs(seed: u64) -> ExportLogsServiceRequest {
    let mut rng = Rng::new(seed);
    let mut r = testdata::logs(seed, 1 + rng.below(2) as usize, rng.below(4) as usize);
    for rl in &mut r.resource_logs {
        if let Some(res) = &mut rl.resource {
            res.entity_refs = entity_refs(&mut rng);
        }
        for sl in &mut rl.scope_logs {
            for l in &mut sl.log_records {
                l.trace_id = id(&mut rng, 16);
                l.span_id = id(&mut rng, 8);
                l.body = (rng.below(4) != 0).then(|| rand_any(&mut rng, 3));
                l.attributes.truncate(rng.below(3) as usize);
                l.attributes.extend(attrs(&mut rng));
                l.event_name = ["", "app.start", "ärger"][rng.below(3) as usize].into();
                l.dropped_attributes_count = rng.below(2) as u32;
            }
        }
    }
    r
}

fn rich_metrics(seed: u64) -> ExportMetricsServiceRequest {
    let mut rng = Rng::new(seed);
    let mut r = testdata::metrics(seed, 1 + rng.below(2) as usize, rng.below(3) as usize);
    let exemplars = |rng: &mut Rng| -> Vec<Exemplar> {
        (0..rng.below(2))
            .map(|_| Exemplar {
                filtered_attributes: attrs(rng),
                time_unix_nano: 17,
                span_id: id(rng, 8),
                trace_id: id(rng, 16),
                value: match rng.below(3) {
                    0 => None,
                    1 => Some(exemplar::Value::AsDouble(2.5)),
                    _ => Some(exemplar::Value::AsInt(-3)),
                },
            })
            .collect()
    };
    for rm in &mut r.resource_metrics {
        for sm in &mut rm.scope_metrics {
            for m in &mut sm.metrics {
                m.metadata = attrs(&mut rng);
                match &mut m.data {
                    Some(metric::Data::Gauge(g)) => {
                        for p in &mut g.data_points {
                            p.exemplars = exemplars(&mut rng);
                            p.value = match rng.below(3) {
                                0 => None,
                                1 => Some(number_data_point::Value::AsInt(-7)),
                                _ => p.value,
                            };
                        }
                    }
                    Some(metric::Data::Sum(s)) => {
                        for p in &mut s.data_points {
                            p.exemplars = exemplars(&mut rng);
                            p.flags = rng.below(2) as u32;
                        }
                    }
                    Some(metric::Data::Histogram(h)) => {
                        for p in &mut h.data_points {
                            p.exemplars = exemplars(&mut rng);
                            p.sum = (rng.below(2) == 0).then_some(1.0);
                            p.bucket_counts = (0..rng.below(4)).map(|i| i * 1000).collect();
                            p.explicit_bounds = (0..rng.below(3)).map(|i| i as f64).collect();
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(h)) => {
                        for p in &mut h.data_points {
                            p.exemplars = exemplars(&mut rng);
                            p.scale = -(rng.below(5) as i32);
                            p.negative = (rng.below(2) == 0).then(|| {
                                exponential_histogram_data_point::Buckets {
                                    offset: -4,
                                    bucket_counts: vec![300, 0, 1 << 40],
                                }
                            });
                            p.zero_threshold = 1e-9;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    r
}

fn base(sig: Signal, seed: u64) -> Vec<u8> {
    let t = match (sig, seed % 3) {
        (Signal::Traces, 0) => {
            Telemetry::Traces(testdata::traces(seed, 1, 1 + (seed % 3) as usize))
        }
        (Signal::Traces, _) => Telemetry::Traces(rich_traces(seed)),
        (Signal::Logs, 0) => Telemetry::Logs(testdata::logs(seed, 1, 1 + (seed % 3) as usize)),
        (Signal::Logs, _) => Telemetry::Logs(rich_logs(seed)),
        (Signal::Metrics, 0) => Telemetry::Metrics(testdata::metrics(seed, 1, 1)),
        (Signal::Metrics, _) => Telemetry::Metrics(rich_metrics(seed)),
    };
    encode(&t)
}

/// How the checks of some mutation cases went.
#[derive(Default, Debug)]
struct Mix {
    accepted: u64,
    rejected: u64,
    with_bad_ids: u64,
}

impl Mix {
    fn check(&mut self, sig: Signal, b: &[u8]) {
        if check(sig, b) {
            self.accepted += 1;
            if scan(sig, b).is_ok_and(|s| s.bad_ids > 0) {
                self.with_bad_ids += 1;
            }
        } else {
            self.rejected += 1;
        }
    }
}

/// Mutates a valid request of `sig` a few times (structure, then bytes) and checks every step.
fn mutation_case(sig: Signal, seed: u64, mix: &mut Mix) {
    let mut rng = Rng::new(seed);
    let b = base(sig, seed);
    assert!(check(sig, &b));
    let Some(mut tree) = parse(&b, 12) else {
        panic!("valid request does not parse: {}", hex(&b))
    };
    for _ in 0..1 + rng.below(4) {
        let donor = pick_field(&tree, &mut rng);
        mutate_tree(&mut tree, &mut rng, &donor);
        mix.check(sig, &enc(&tree));
    }
    let mut b = enc(&tree);
    for _ in 0..rng.below(3) {
        mutate_bytes(&mut b, &mut rng);
        mix.check(sig, &b);
    }
}

/// The mutations are worth something only if they produce both outcomes, and counts to compare.
#[test]
fn mutations_give_a_mix_of_outcomes() {
    for sig in Signal::ALL {
        let mut mix = Mix::default();
        for seed in 0..1500 {
            mutation_case(sig, seed, &mut mix);
        }
        let total = mix.accepted + mix.rejected;
        assert!(
            mix.accepted * 5 > total && mix.rejected * 5 > total,
            "{sig}: {mix:?}"
        );
        if sig != Signal::Metrics {
            assert!(mix.with_bad_ids * 20 > mix.accepted, "{sig}: {mix:?}");
        }
    }
}

fn signal(i: u8) -> Signal {
    Signal::ALL[usize::from(i % 3)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated valid requests of every signal.
    #[test]
    fn agrees_with_prost_on_mutations(seed in any::<u64>(), sig in any::<u8>()) {
        mutation_case(signal(sig), seed, &mut Mix::default());
    }

    /// Random fields, often of the tags and wire types the schemas use, nested.
    #[test]
    fn agrees_with_prost_on_random_fields(seed in any::<u64>(), sig in any::<u8>()) {
        let mut rng = Rng::new(seed);
        let sig = signal(sig);
        let fields = rand_fields(&mut rng, 4);
        // usually wrapped in a valid-looking envelope, so the deeper schemas get reached
        let b = match rng.below(3) {
            0 => enc(&fields),
            1 => enc(&[f(1, V::Msg(vec![f(2, V::Msg(vec![f(2, V::Msg(fields))]))]))]),
            _ => enc(&[f(1, V::Msg(vec![f(1, V::Msg(fields))]))]),
        };
        check(sig, &b);
    }

    /// Random bytes.
    #[test]
    fn agrees_with_prost_on_random_bytes(
        b in prop::collection::vec(any::<u8>(), 0..64),
        sig in any::<u8>(),
    ) {
        check(signal(sig), &b);
    }
}

// ---- valid requests ----

#[test]
fn valid_requests_count_like_otelgw() {
    for seed in 0..12u64 {
        for (resources, n) in [(1, 0), (1, 1), (2, 5), (3, 17), (1, 200)] {
            let t = Telemetry::Traces(testdata::traces(seed, resources, n));
            let s = scan(Signal::Traces, &encode(&t));
            assert_eq!(
                s,
                Ok(Scan {
                    items: t.item_count(),
                    bad_ids: 0
                })
            );
            let t = Telemetry::Logs(testdata::logs(seed, resources, n));
            let s = scan(Signal::Logs, &encode(&t));
            assert_eq!(
                s,
                Ok(Scan {
                    items: t.item_count(),
                    bad_ids: 0
                })
            );
            let t = Telemetry::Metrics(testdata::metrics(seed, resources, n.min(40)));
            let s = scan(Signal::Metrics, &encode(&t));
            assert_eq!(
                s,
                Ok(Scan {
                    items: t.item_count(),
                    bad_ids: 0
                })
            );
        }
        for sig in Signal::ALL {
            for s in [seed, seed + 100, seed + 200] {
                assert!(check(sig, &base(sig, s)));
            }
        }
    }
    assert_eq!(scan(Signal::Traces, &[]), Ok(Scan::default()));
}

// ---- targeted cases ----

fn replace(b: &mut [u8], find: &[u8], with: &[u8]) {
    assert_eq!(find.len(), with.len());
    let i = b
        .windows(find.len())
        .position(|w| w == find)
        .expect("pattern present");
    b[i..i + find.len()].copy_from_slice(with);
}

#[test]
fn invalid_utf8_in_strings() {
    let good = encode(&Telemetry::Traces(testdata::traces(1, 1, 3)));
    assert!(check(Signal::Traces, &good));
    let mut name = good.clone();
    replace(
        &mut name,
        b"GET /api/v1/orders/1",
        b"GET /api/v1/orders/\xff",
    );
    assert!(!check(Signal::Traces, &name));
    assert_eq!(scan(Signal::Traces, &name), Err(Fail::Utf8.into()));
    let mut key = good.clone();
    replace(&mut key, b"http.route", b"http.rout\xc3");
    assert!(!check(Signal::Traces, &key));
    // a surrogate, encoded
    let mut sur = good.clone();
    replace(
        &mut sur,
        b"GET /api/v1/orders/1",
        b"GET /api/v1/ord\xed\xa0\x80/1",
    );
    assert!(!check(Signal::Traces, &sur));
    // multi-byte utf-8 is fine; invalid bytes in a bytes field are fine
    let mut ok = good.clone();
    replace(
        &mut ok,
        b"GET /api/v1/orders/1",
        b"GET /api/v1/orde\xc3\xa4s1",
    );
    assert!(check(Signal::Traces, &ok));
    let logs = Telemetry::Logs(ExportLogsServiceRequest {
        resource_logs: vec![opentelemetry_proto::tonic::logs::v1::ResourceLogs {
            scope_logs: vec![opentelemetry_proto::tonic::logs::v1::ScopeLogs {
                log_records: vec![opentelemetry_proto::tonic::logs::v1::LogRecord {
                    body: Some(AnyValue {
                        value: Some(any_value::Value::BytesValue(vec![0xff, 0xfe])),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    assert!(check(Signal::Logs, &encode(&logs)));
}

/// A traces request whose first resource attribute value is `inner` (an AnyValue), nested.
fn traces_with_value(inner: Vec<F>) -> Vec<u8> {
    let kv = vec![f(1, V::Len(b"k".to_vec())), f(2, V::Msg(inner))];
    let resource = vec![f(1, V::Msg(kv))];
    let span = vec![f(1, V::Len(vec![1; 16])), f(2, V::Len(vec![2; 8]))];
    let rs = vec![
        f(1, V::Msg(resource)),
        f(2, V::Msg(vec![f(2, V::Msg(span))])),
    ];
    enc(&[f(1, V::Msg(rs))])
}

#[test]
fn recursion_limit_from_both_sides() {
    // leaves: a known varint, an unknown varint (skipping costs a level too), nothing
    let leaves: [Vec<F>; 4] = [
        vec![f(3, V::Varint(7))],
        vec![f(99, V::Varint(7))],
        vec![],
        vec![f(99, V::Group(vec![f(98, V::Group(vec![]))]))],
    ];
    for leaf in &leaves {
        let (mut kv_ok, mut kv_err, mut arr_ok, mut arr_err) = (false, false, false, false);
        for depth in 0..60 {
            // AnyValue -> KeyValueList -> KeyValue -> AnyValue: three levels a step
            let mut v = leaf.clone();
            for _ in 0..depth {
                let kv = vec![f(1, V::Len(b"k".to_vec())), f(2, V::Msg(v))];
                v = vec![f(6, V::Msg(vec![f(1, V::Msg(kv))]))];
            }
            let b = traces_with_value(v);
            if check(Signal::Traces, &b) {
                kv_ok = true;
            } else {
                kv_err = true;
                assert_eq!(scan(Signal::Traces, &b), Err(Fail::Recursion.into()));
            }
            // AnyValue -> ArrayValue -> AnyValue: two levels a step
            let mut v = leaf.clone();
            for _ in 0..depth * 3 / 2 {
                v = vec![f(5, V::Msg(vec![f(1, V::Msg(v))]))];
            }
            if check(Signal::Traces, &traces_with_value(v)) {
                arr_ok = true;
            } else {
                arr_err = true;
            }
        }
        assert!(kv_ok && kv_err && arr_ok && arr_err);
    }
}

#[test]
fn recursion_limit_exact_boundary() {
    // Request fields are merged with budget 100: ResourceSpans 99, Resource 98, KeyValue 97,
    // AnyValue 96, then 3 a kvlist step; the fields of the innermost message need budget > 0
    // only if they are messages or unknown.
    let at = |steps: usize, leaf: Vec<F>| {
        let mut v = leaf;
        for _ in 0..steps {
            let kv = vec![f(1, V::Len(b"k".to_vec())), f(2, V::Msg(v))];
            v = vec![f(6, V::Msg(vec![f(1, V::Msg(kv))]))];
        }
        traces_with_value(v)
    };
    // innermost AnyValue at budget 96 - 3*32 = 0: a known varint is fine, an unknown is not
    assert!(check(Signal::Traces, &at(32, vec![f(3, V::Varint(1))])));
    assert!(!check(Signal::Traces, &at(32, vec![f(99, V::Varint(1))])));
    assert!(check(Signal::Traces, &at(31, vec![f(99, V::Varint(1))])));
    // one more message level under budget 0
    assert!(!check(Signal::Traces, &at(32, vec![f(5, V::Msg(vec![]))])));
    assert!(check(Signal::Traces, &at(31, vec![f(5, V::Msg(vec![]))])));
}

#[test]
fn wrong_wire_type_for_known_fields() {
    let span = |extra: F| {
        let s = vec![f(1, V::Len(vec![1; 16])), f(2, V::Len(vec![2; 8])), extra];
        enc(&[f(1, V::Msg(vec![f(2, V::Msg(vec![f(2, V::Msg(s))]))]))])
    };
    assert!(check(Signal::Traces, &span(f(5, V::Len(b"n".to_vec())))));
    for bad in [
        f(5, V::Varint(3)),     // name as varint
        f(16, V::F64(1)),       // fixed32 flags as fixed64
        f(16, V::Varint(1)),    // fixed32 flags as varint
        f(7, V::F32(1)),        // fixed64 as fixed32
        f(6, V::Len(vec![1])),  // enum, packed-looking
        f(9, V::Varint(1)),     // message as varint
        f(9, V::Group(vec![])), // message as group
        f(1, V::F64(0)),        // bytes as fixed64
    ] {
        assert!(!check(Signal::Traces, &span(bad.clone())), "{bad:?}");
    }
    // an unknown field may have any wire type
    for ok in [
        f(17, V::Varint(3)),
        f(17, V::Len(vec![0xff])),
        f(17, V::F32(0)),
        f(17, V::Group(vec![f(1, V::Varint(1))])),
        f((1 << 29) - 1, V::F64(0)),
    ] {
        assert!(check(Signal::Traces, &span(ok.clone())), "{ok:?}");
    }
}

fn histogram_request(point: Vec<F>, buckets: Vec<F>) -> Vec<u8> {
    let exp_point = vec![f(8, V::Msg(buckets))];
    let metrics = vec![
        f(2, V::Msg(vec![f(9, V::Msg(vec![f(1, V::Msg(point))]))])),
        f(
            2,
            V::Msg(vec![f(10, V::Msg(vec![f(1, V::Msg(exp_point))]))]),
        ),
    ];
    enc(&[f(1, V::Msg(vec![f(2, V::Msg(metrics))]))])
}

#[test]
fn packed_and_unpacked_repeated_numbers() {
    let packed64 = |n: usize| V::Len((0..n as u8).collect());
    let mut packed_var = vec![];
    for v in [0u64, 1, 300, u64::MAX] {
        put_varint(&mut packed_var, v);
    }
    let buckets_packed = vec![f(2, V::Len(packed_var.clone()))];
    let buckets_unpacked = vec![
        f(2, V::Varint(3)),
        f(2, V::Varint(u64::MAX)),
        f(1, V::Varint(9)),
    ];
    let point_packed = vec![f(6, packed64(24)), f(7, packed64(16))];
    let point_unpacked = vec![f(6, V::F64(1)), f(6, V::F64(2)), f(7, V::F64(3))];
    let point_mixed = vec![f(6, V::F64(1)), f(6, packed64(8)), f(7, packed64(0))];
    for p in [&point_packed, &point_unpacked, &point_mixed] {
        for bk in [&buckets_packed, &buckets_unpacked] {
            let b = histogram_request(p.clone(), bk.clone());
            assert!(check(Signal::Metrics, &b));
            assert_eq!(scan(Signal::Metrics, &b).map(|s| s.items), Ok(2));
        }
    }
    // and prost decodes both forms to the same values
    let a = Telemetry::decode_proto(
        Signal::Metrics,
        &histogram_request(point_packed.clone(), buckets_packed.clone()),
    );
    assert!(a.is_ok());
    // packed fixed64 that is not a multiple of 8, a truncated packed varint, the wrong
    // unpacked wire types
    for (p, bk) in [
        (vec![f(6, packed64(12))], vec![]),
        (vec![f(7, packed64(7))], vec![]),
        (vec![f(6, V::Varint(1))], vec![]),
        (vec![f(7, V::F32(1))], vec![]),
        (vec![], vec![f(2, V::Len(vec![0x80]))]),
        (vec![], vec![f(2, V::Len(vec![1, 0xff, 0xff]))]),
        (vec![], vec![f(2, V::F64(1))]),
        (
            vec![],
            vec![f(
                2,
                V::Len(vec![
                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
                ]),
            )],
        ),
    ] {
        assert!(!check(Signal::Metrics, &histogram_request(p, bk)));
    }
}

#[test]
fn repeated_optional_messages_merge() {
    let res = |k: &str| {
        f(
            1,
            V::Msg(vec![f(
                1,
                V::Msg(vec![f(1, V::Len(k.as_bytes().to_vec()))]),
            )]),
        )
    };
    let span = f(
        2,
        V::Msg(vec![f(1, V::Len(vec![1; 16])), f(2, V::Len(vec![2; 8]))]),
    );
    let b = enc(&[f(
        1,
        V::Msg(vec![
            res("a"),
            f(2, V::Msg(vec![span.clone()])),
            res("b"),
            f(2, V::Msg(vec![span.clone(), span.clone()])),
            res("c"),
        ]),
    )]);
    assert!(check(Signal::Traces, &b));
    assert_eq!(scan(Signal::Traces, &b).map(|s| s.items), Ok(3));
    // a second scope and status, merged
    let s2 = f(
        2,
        V::Msg(vec![
            f(1, V::Len(vec![1; 16])),
            f(15, V::Msg(vec![f(3, V::Varint(2))])),
            f(2, V::Len(vec![2; 8])),
            f(15, V::Msg(vec![f(2, V::Len(b"x".to_vec()))])),
        ]),
    );
    let b = enc(&[f(
        1,
        V::Msg(vec![f(
            2,
            V::Msg(vec![
                f(1, V::Msg(vec![f(1, V::Len(b"s".to_vec()))])),
                s2,
                f(1, V::Msg(vec![f(2, V::Len(b"v".to_vec()))])),
            ]),
        )]),
    )]);
    assert!(check(Signal::Traces, &b));
}

#[test]
fn metric_data_oneof_merges_or_replaces() {
    let points =
        |tag: u32, n: usize| f(tag, V::Msg((0..n).map(|_| f(1, V::Msg(vec![]))).collect()));
    let req = |data: Vec<F>| {
        let mut m = vec![f(1, V::Len(b"m".to_vec()))];
        m.extend(data);
        enc(&[f(1, V::Msg(vec![f(2, V::Msg(vec![f(2, V::Msg(m))]))]))])
    };
    let cases: Vec<(Vec<F>, u64)> = vec![
        (vec![points(5, 2), points(7, 3)], 3), // gauge then sum
        (vec![points(5, 2), points(5, 3)], 5), // gauge twice: merged
        (vec![points(5, 2), points(7, 3), points(5, 1)], 1),
        (vec![points(7, 4), points(5, 0)], 0),
        (
            vec![points(9, 1), points(10, 2), points(10, 2), points(11, 3)],
            3,
        ),
        (
            vec![points(11, 1), f(1, V::Len(b"x".to_vec())), points(11, 2)],
            3,
        ),
        (vec![points(10, 2), points(9, 2), points(9, 1)], 3),
        (vec![], 0),
    ];
    for (data, want) in cases {
        let b = req(data);
        assert!(check(Signal::Metrics, &b));
        assert_eq!(scan(Signal::Metrics, &b).map(|s| s.items), Ok(want));
    }
    // the data points of a metric that another metric repeats do not merge across metrics
    let t = Telemetry::Metrics(testdata::metrics(3, 2, 4));
    assert_eq!(
        scan(Signal::Metrics, &encode(&t)).map(|s| s.items),
        Ok(t.item_count())
    );
}

#[test]
fn groups_in_unknown_fields() {
    let span = |extra: Vec<u8>| {
        let mut s = enc(&[f(1, V::Len(vec![1; 16])), f(2, V::Len(vec![2; 8]))]);
        s.extend(extra);
        enc(&[f(1, V::Msg(vec![f(2, V::Msg(vec![f(2, V::Len(s))]))]))])
    };
    let g = |fields: Vec<F>| enc(&[f(100, V::Group(fields))]);
    assert!(check(Signal::Traces, &span(g(vec![]))));
    assert!(check(
        Signal::Traces,
        &span(g(vec![
            f(1, V::Varint(1)),
            f(2, V::Group(vec![f(3, V::F32(0)), f(4, V::Len(vec![0xff]))])),
            f(5, V::F64(9)),
        ]))
    ));
    let mut k = vec![];
    // an end tag that does not match the start
    put_key(&mut k, 100, 3);
    put_key(&mut k, 101, 4);
    assert!(!check(Signal::Traces, &span(k.clone())));
    // a group never closed inside the span
    let mut k = vec![];
    put_key(&mut k, 100, 3);
    put_key(&mut k, 1, 0);
    k.push(1);
    assert!(!check(Signal::Traces, &span(k.clone())));
    // closed after the span ends, in the enclosing message: still an error
    let mut inner = enc(&[f(1, V::Len(vec![1; 16]))]);
    put_key(&mut inner, 100, 3);
    let mut b = enc(&[f(1, V::Msg(vec![f(2, V::Msg(vec![f(2, V::Len(inner))]))]))]);
    put_key(&mut b, 100, 4);
    assert!(!check(Signal::Traces, &b));
    // a stray end group in a message and at the top level
    let mut k = vec![];
    put_key(&mut k, 100, 4);
    assert!(!check(Signal::Traces, &span(k.clone())));
    assert!(!check(Signal::Traces, &k));
    for sig in Signal::ALL {
        assert!(!check(sig, &k));
        // top-level groups are skipped like any unknown field
        assert!(check(sig, &g(vec![f(1, V::Varint(0))])));
        // a known field number used as a group
        assert!(!check(sig, &enc(&[f(1, V::Group(vec![]))])));
    }
}

#[test]
fn ids_of_every_length() {
    let span =
        |fields: Vec<F>| enc(&[f(1, V::Msg(vec![f(2, V::Msg(vec![f(2, V::Msg(fields))]))]))]);
    let log = |fields: Vec<F>| enc(&[f(1, V::Msg(vec![f(2, V::Msg(vec![f(2, V::Msg(fields))]))]))]);
    for n in 0..=20usize {
        for fill in [0u8, 7] {
            let v = V::Len(vec![fill; n]);
            let (t, s) = (V::Len(vec![1; 16]), V::Len(vec![2; 8]));
            for fields in [
                vec![f(1, v.clone()), f(2, s.clone())],
                vec![f(1, t.clone()), f(2, v.clone())],
                vec![f(1, t.clone()), f(2, s.clone()), f(4, v.clone())],
                // last one wins, both ways round
                vec![f(1, v.clone()), f(2, s.clone()), f(1, t.clone())],
                vec![f(1, t.clone()), f(2, s.clone()), f(1, v.clone())],
                vec![
                    f(4, v.clone()),
                    f(1, t.clone()),
                    f(2, s.clone()),
                    f(4, V::Len(vec![])),
                ],
            ] {
                assert!(check(Signal::Traces, &span(fields.clone())));
                let logs: Vec<F> = fields
                    .into_iter()
                    .filter(|x| x.tag != 4)
                    .map(|x| f(x.tag + 8, x.v))
                    .collect();
                assert!(check(Signal::Logs, &log(logs)));
            }
        }
    }
    // a span with no ids at all is bad; a log record with none is fine
    assert_eq!(
        scan(Signal::Traces, &span(vec![])),
        Ok(Scan {
            items: 1,
            bad_ids: 1
        })
    );
    assert_eq!(
        scan(Signal::Logs, &log(vec![])),
        Ok(Scan {
            items: 1,
            bad_ids: 0
        })
    );
    // exemplar and link ids are not checked
    let t = Telemetry::Metrics(rich_metrics(5));
    assert_eq!(scan(Signal::Metrics, &encode(&t)).map(|s| s.bad_ids), Ok(0));
}

#[test]
fn varints_and_keys() {
    let top = |k: &[u8]| {
        for sig in Signal::ALL {
            check(sig, k);
        }
        scan(Signal::Traces, k).is_ok()
    };
    // an unknown varint field 2 with a 10-byte value: last byte 1 is u64::MAX-ish, 2 overflows
    let mut ten = vec![0x10];
    ten.extend([0xff; 9]);
    assert!(top(&[ten.clone(), vec![0x01]].concat()));
    assert!(!top(&[ten.clone(), vec![0x02]].concat()));
    assert!(!top(&[ten.clone(), vec![0x80, 0x00]].concat()));
    // non-minimal varints are accepted
    assert!(top(&[0x10, 0x80, 0x80, 0x00]));
    assert!(top(&[0x90, 0x80, 0x80, 0x80, 0x00, 0x05]));
    // keys: field number 0, wire types 6 and 7, above u32::MAX, the largest field number
    assert!(!top(&[0x00]));
    assert!(!top(&[0x0f, 0x00]));
    assert!(!top(&[0x0e, 0x00]));
    assert!(!top(&[0x80, 0x80, 0x80, 0x80, 0x10, 0x00]));
    let mut k = vec![];
    put_key(&mut k, (1 << 29) - 1, 0);
    k.push(0);
    assert!(top(&k));
    // truncated everything
    assert!(!top(&[0x10]));
    assert!(!top(&[0x10, 0x80]));
    assert!(!top(&[0x11, 0, 0, 0, 0, 0, 0, 0]));
    assert!(!top(&[0x15, 0, 0, 0]));
    assert!(!top(&[0x0a, 0x05, 0, 0]));
    assert!(!top(&[
        0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
    ]));
    // a nested message whose last field runs past its end
    assert!(!top(&[0x0a, 0x02, 0x1a, 0x01, 0x41]));
    assert!(!top(&[0x0a, 0x01, 0x20, 0x01]));
}

#[test]
fn scan_reports_errors_by_name() {
    assert_eq!(WireError("invalid varint").to_string(), "invalid varint");
    assert_eq!(scan(Signal::Logs, &[0x0a, 0x05]), Err(Fail::Length.into()));
    assert_eq!(scan(Signal::Logs, &[0x10]), Err(Fail::Varint.into()));
    assert_eq!(
        scan(Signal::Logs, &[0x08, 0x01]),
        Err(Fail::Unexpected.into())
    );
}
