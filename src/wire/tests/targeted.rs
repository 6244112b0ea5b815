//! Targeted cases: invalid UTF-8, the recursion limit from both sides, wrong wire types, packed
//! and unpacked repeated numbers, merging of repeated and oneof fields, groups, ids of every
//! length, varints and keys, errors by name.

use super::requests::*;
use super::tree::*;
use super::*;
use crate::data::Telemetry;
use crate::testdata;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

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
