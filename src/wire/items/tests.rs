//! The contract: editing on the wire decodes to what editing the prost structs gives, for
//! random requests of every signal, random action lists and random item removals.

use std::borrow::Cow;

use super::*;
use crate::data::attributes::{AttrsEdit, AttrsRead};
use crate::data::{RequestMeta, Telemetry};
use crate::processors::actions::{apply, compile_all, Action, ActionConfig};
use crate::testdata;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use proptest::prelude::*;

fn meta() -> RequestMeta {
    RequestMeta {
        client_address: Some("10.1.2.3:5555".parse().unwrap()),
        headers: vec![("x-tenant".into(), "acme".into())],
        wire_size: 0,
        auth: Some("ann".into()),
    }
}

fn sample(signal: Signal, seed: u64, groups: usize, per: usize) -> Telemetry {
    match signal {
        Signal::Traces => Telemetry::Traces(testdata::traces(seed, groups, per)),
        Signal::Metrics => Telemetry::Metrics(testdata::metrics(seed, groups, per)),
        Signal::Logs => Telemetry::Logs(testdata::logs(seed, groups, per)),
    }
}

/// Keys the random actions pick from: ones the samples have (spans, logs, points) and new ones.
const KEYS: &[&str] = &[
    "http.route",
    "http.request.method",
    "http.response.status_code",
    "sampled.ratio",
    "cache.hit",
    "user.tier",
    "attempt",
    "latency.ms",
    "cached",
    "region",
    "tier",
    "env",
    "new.key",
    "",
];

fn action_yaml(kind: u8, k1: &str, k2: &str, v: u8) -> String {
    let value = [
        "prod", "42", "1.5", "true", "[a, 1]", "{x: 1}", "'200'", "''",
    ][v as usize % 8];
    match kind % 14 {
        0 => format!("{{key: '{k1}', value: {value}, action: insert}}"),
        1 => format!("{{key: '{k1}', value: {value}, action: update}}"),
        2 => format!("{{key: '{k1}', value: {value}, action: upsert}}"),
        3 => format!("{{key: '{k1}', from_attribute: '{k2}', action: upsert}}"),
        4 => format!("{{key: '{k1}', from_context: metadata.x-tenant, action: insert}}"),
        5 => format!("{{key: '{k1}', from_context: auth.username, action: upsert}}"),
        6 => format!("{{key: '{k1}', action: delete}}"),
        7 => "{pattern: '^(http|ca)', action: delete}".to_string(),
        8 => format!("{{key: '{k1}', action: hash}}"),
        9 => "{pattern: 'e$', action: hash}".to_string(),
        10 => format!(
            "{{key: '{k1}', pattern: '^/(?P<api>[a-z]+)/(?P<ver>v[0-9])', action: extract}}"
        ),
        11 => format!("{{key: '{k1}', action: convert, converted_type: int}}"),
        12 => format!("{{key: '{k1}', action: convert, converted_type: double}}"),
        _ => format!("{{key: '{k1}', action: convert, converted_type: string}}"),
    }
}

fn compile(specs: &[(u8, usize, usize, u8)]) -> Vec<Action> {
    let yaml: Vec<String> = specs
        .iter()
        .map(|&(kind, k1, k2, v)| {
            // an empty key is only valid where a key is optional
            let k1 = match KEYS[k1 % KEYS.len()] {
                "" if !matches!(kind % 14, 7 | 9) => "blank",
                k => k,
            };
            action_yaml(kind, k1, KEYS[k2 % KEYS.len()], v)
        })
        .collect();
    let cfgs: Vec<ActionConfig> =
        serde_norway::from_str(&format!("[{}]", yaml.join(", "))).unwrap();
    let mut d = crate::component::Diagnostics::default();
    let actions = compile_all(&cfgs, "actions", &mut d);
    assert!(d.errors.is_empty(), "{yaml:?}: {:?}", d.errors);
    actions
}

/// The reference: the same edits on the decoded request, items visited in request order,
/// item `n` removed when bit `n % 64` of `remove` is set; containers that had items and lost
/// them all removed.
fn edit_decoded(t: &mut Telemetry, actions: &[Action], remove: u64) {
    let meta = meta();
    let mut n = 0u32;
    let mut keep = |attrs: &mut Vec<KeyValue>| {
        apply(actions, attrs, &meta);
        let drop = remove >> (n % 64) & 1 == 1;
        n += 1;
        !drop
    };
    macro_rules! prune {
        ($v:expr, $inner:ident, $body:expr) => {
            $v.retain_mut(|$inner| $body)
        };
    }
    match t {
        Telemetry::Traces(r) => prune!(r.resource_spans, rs, {
            let had = !rs.scope_spans.is_empty();
            prune!(rs.scope_spans, ss, {
                let had = !ss.spans.is_empty();
                ss.spans.retain_mut(|s| keep(&mut s.attributes));
                !had || !ss.spans.is_empty()
            });
            !had || !rs.scope_spans.is_empty()
        }),
        Telemetry::Logs(r) => prune!(r.resource_logs, rl, {
            let had = !rl.scope_logs.is_empty();
            prune!(rl.scope_logs, sl, {
                let had = !sl.log_records.is_empty();
                sl.log_records.retain_mut(|l| keep(&mut l.attributes));
                !had || !sl.log_records.is_empty()
            });
            !had || !rl.scope_logs.is_empty()
        }),
        Telemetry::Metrics(r) => prune!(r.resource_metrics, rm, {
            let had = !rm.scope_metrics.is_empty();
            prune!(rm.scope_metrics, sm, {
                let had = !sm.metrics.is_empty();
                prune!(sm.metrics, m, {
                    macro_rules! points {
                        ($pts:expr) => {{
                            let had = !$pts.is_empty();
                            $pts.retain_mut(|p| keep(&mut p.attributes));
                            !had || !$pts.is_empty()
                        }};
                    }
                    match &mut m.data {
                        Some(Data::Gauge(g)) => points!(g.data_points),
                        Some(Data::Sum(s)) => points!(s.data_points),
                        Some(Data::Histogram(h)) => points!(h.data_points),
                        Some(Data::ExponentialHistogram(h)) => points!(h.data_points),
                        Some(Data::Summary(s)) => points!(s.data_points),
                        None => true,
                    }
                });
                !had || !sm.metrics.is_empty()
            });
            !had || !rm.scope_metrics.is_empty()
        }),
    }
}

fn edit_wire(signal: Signal, bytes: &Bytes, actions: &[Action], remove: u64) -> Edited {
    let meta = meta();
    let mut n = 0u32;
    edit_items(signal, bytes, |item| {
        apply(actions, item.attributes, &meta);
        if remove >> (n % 64) & 1 == 1 {
            item.remove();
        }
        n += 1;
    })
    .expect("a request scan accepts")
}

fn check(signal: Signal, bytes: &Bytes, actions: &[Action], remove: u64) {
    let mut decoded = Telemetry::decode_proto(signal, bytes).unwrap();
    let before = decoded.item_count();
    edit_decoded(&mut decoded, actions, remove);
    let edited = edit_wire(signal, bytes, actions, remove);
    crate::wire::scan(signal, &edited.bytes).expect("the edited request is well formed");
    let got = Telemetry::decode_proto(signal, &edited.bytes).unwrap();
    assert_eq!(got, decoded);
    assert_eq!(edited.removed, before - decoded.item_count());
}

/// Oddities real encoders may send: a duplicate key, an empty key, a value-less attribute,
/// an unknown field in an item and in a `KeyValue`, attributes split around other fields.
fn oddities(t: &mut Telemetry) -> Bytes {
    let odd = |attrs: &mut Vec<KeyValue>| {
        if let Some(first) = attrs.first().cloned() {
            attrs.push(first);
        }
        attrs.push(testdata::kv("", testdata::s("blank")));
        attrs.push(KeyValue {
            key: "novalue".into(),
            value: None,
            ..Default::default()
        });
    };
    if let Telemetry::Traces(r) = t {
        for s in r
            .resource_spans
            .iter_mut()
            .flat_map(|rs| &mut rs.scope_spans)
            .flat_map(|ss| &mut ss.spans)
        {
            odd(&mut s.attributes);
        }
    }
    if let Telemetry::Logs(r) = t {
        for l in r
            .resource_logs
            .iter_mut()
            .flat_map(|rl| &mut rl.scope_logs)
            .flat_map(|sl| &mut sl.log_records)
        {
            odd(&mut l.attributes);
        }
    }
    t.encode_to_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn editing_on_the_wire_equals_editing_the_decoded_request(
        seed in 0u64..1000, groups in 0usize..4, per in 0usize..6, sig in 0usize..3,
        specs in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>(), any::<u8>()), 0..6),
        remove in prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
        odd in any::<bool>(),
    ) {
        let signal = Signal::ALL[sig];
        let mut t = sample(signal, seed, groups, per);
        let bytes = if odd { oddities(&mut t) } else { t.encode_to_bytes() };
        check(signal, &bytes, &compile(&specs), remove);
    }
}

#[test]
fn nothing_edited_gives_the_same_buffer() {
    let bytes = sample(Signal::Traces, 1, 2, 3).encode_to_bytes();
    let out = edit_items(Signal::Traces, &bytes, |_| {}).unwrap();
    assert_eq!(out.bytes.as_ptr(), bytes.as_ptr(), "no copy");
    assert_eq!(out.removed, 0);
}

#[test]
fn a_canonical_request_comes_out_byte_for_byte_as_the_decoded_path_encodes_it() {
    // only appends and removals: the wire path writes what prost writes
    for signal in Signal::ALL {
        let t = sample(signal, 9, 2, 4);
        let bytes = t.encode_to_bytes();
        let actions = compile(&[(2, 11, 0, 0), (6, 0, 0, 0)]); // upsert env, delete http.route
        let mut decoded = t.clone();
        edit_decoded(&mut decoded, &actions, 0);
        let edited = edit_wire(signal, &bytes, &actions, 0);
        assert_eq!(edited.bytes, decoded.encode_to_bytes(), "{signal:?}");
    }
}

#[test]
fn unknown_fields_and_split_attributes_survive() {
    // a span whose attributes come in two runs around its name, with an unknown field (99)
    // inside the span and one (50) inside a KeyValue
    let mut span = Vec::new();
    let kv = |k: &str, v: &str, extra: bool| {
        let mut kv = testdata::kv(k, testdata::s(v)).encode_to_vec();
        if extra {
            prost::encoding::uint64::encode(50, &7, &mut kv);
        }
        kv
    };
    prost::encoding::bytes::encode(1, &vec![1u8; 16], &mut span);
    prost::encoding::bytes::encode(2, &vec![2u8; 8], &mut span);
    prost::encoding::bytes::encode(9, &kv("a", "1", true), &mut span);
    prost::encoding::string::encode(5, &"GET /".to_string(), &mut span);
    prost::encoding::uint64::encode(99, &5, &mut span);
    prost::encoding::bytes::encode(9, &kv("b", "2", false), &mut span);
    let mut scope = Vec::new();
    prost::encoding::bytes::encode(2, &span, &mut scope);
    let mut group = Vec::new();
    prost::encoding::bytes::encode(2, &scope, &mut group);
    let mut req = Vec::new();
    prost::encoding::bytes::encode(1, &group, &mut req);
    let bytes = Bytes::from(req);
    // update "a" (in place, keeping its unknown field), delete "b", append "c"
    let out = edit_items(Signal::Traces, &bytes, |item| {
        assert_eq!(item.view.span_name(), Some("GET /"));
        let a = item.attributes.position("a").unwrap();
        item.attributes.set_at(
            a,
            Cow::Owned(AnyValue {
                value: Some(any_value::Value::IntValue(9)),
            }),
        );
        item.attributes.remove_where(&mut |k| k == "b");
        item.attributes.push(
            "c",
            Cow::Owned(AnyValue {
                value: Some(any_value::Value::BoolValue(true)),
            }),
        );
    })
    .unwrap();
    let t = Telemetry::decode_proto(Signal::Traces, &out.bytes).unwrap();
    let Telemetry::Traces(r) = t else {
        unreachable!()
    };
    let s = &r.resource_spans[0].scope_spans[0].spans[0];
    let keys: Vec<_> = s.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["a", "c"]);
    assert_eq!(s.name, "GET /");
    // the unknown fields are still there, byte for byte
    let mut unknown_span = Vec::new();
    prost::encoding::uint64::encode(99, &5, &mut unknown_span);
    assert!(out
        .bytes
        .windows(unknown_span.len())
        .any(|w| w == unknown_span));
    let mut unknown_kv = Vec::new();
    prost::encoding::uint64::encode(50, &7, &mut unknown_kv);
    assert!(out.bytes.windows(unknown_kv.len()).any(|w| w == unknown_kv));
}

#[test]
fn views_read_what_decoding_reads() {
    let t = sample(Signal::Logs, 3, 2, 3);
    let Telemetry::Logs(r) = &t else {
        unreachable!()
    };
    let mut want = Vec::new();
    for rl in &r.resource_logs {
        for l in rl.scope_logs.iter().flat_map(|sl| &sl.log_records) {
            want.push((rl.resource.clone().unwrap_or_default(), l.severity_number));
        }
    }
    let mut got = Vec::new();
    edit_items(Signal::Logs, &t.encode_to_bytes(), |item| {
        assert_eq!(item.view.kind(), ItemKind::LogRecord);
        assert_eq!(item.view.span_name(), None);
        got.push((
            item.view.resource().clone(),
            item.view.severity_number().unwrap(),
        ));
    })
    .unwrap();
    assert_eq!(got, want);

    let t = sample(Signal::Metrics, 3, 1, 4);
    let Telemetry::Metrics(r) = &t else {
        unreachable!()
    };
    let mut want = Vec::new();
    for m in r
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
    {
        for _ in 0..crate::data::metric_point_count(m) {
            want.push(m.name.clone());
        }
    }
    let mut got = Vec::new();
    edit_items(Signal::Metrics, &t.encode_to_bytes(), |item| {
        got.push(item.view.metric_name().unwrap().to_string());
    })
    .unwrap();
    assert_eq!(got, want);
}

#[test]
fn malformed_bytes_give_none() {
    for bad in [&[0x0a, 0x05, 0x0a][..], &[0x0a], &[0x0a, 0x02, 0x12, 0x05]] {
        assert!(edit_items(Signal::Traces, &Bytes::copy_from_slice(bad), |_| {}).is_none());
    }
}
