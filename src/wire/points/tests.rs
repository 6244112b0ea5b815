//! The contract: the walk reports what decoding the request gives — the same resource
//! attributes, scopes, metric names and point attributes — or says the request is unusual.

use super::*;
use crate::testdata::{self, kv, s, Rng};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{metric, Metric};
use prost::Message;

/// Each data point's attributes, in order.
fn point_attrs(m: &Metric, mut f: impl FnMut(&Vec<KeyValue>)) {
    use metric::Data;
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.iter().for_each(|p| f(&p.attributes)),
        Some(Data::Sum(x)) => x.data_points.iter().for_each(|p| f(&p.attributes)),
        Some(Data::Histogram(h)) => h.data_points.iter().for_each(|p| f(&p.attributes)),
        Some(Data::ExponentialHistogram(h)) => h.data_points.iter().for_each(|p| f(&p.attributes)),
        Some(Data::Summary(x)) => x.data_points.iter().for_each(|p| f(&p.attributes)),
        None => {}
    }
}

fn point_attrs_mut(m: &mut Metric, mut f: impl FnMut(&mut Vec<KeyValue>)) {
    use metric::Data;
    match &mut m.data {
        Some(Data::Gauge(g)) => g.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        Some(Data::Sum(x)) => x.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        Some(Data::Histogram(h)) => h.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        Some(Data::ExponentialHistogram(h)) => {
            h.data_points.iter_mut().for_each(|p| f(&mut p.attributes))
        }
        Some(Data::Summary(x)) => x.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        None => {}
    }
}

type Flat = Vec<(
    Vec<KeyValue>,
    Option<(String, String)>,
    String,
    Vec<KeyValue>,
)>;

fn to_kv(a: Attr<'_>) -> KeyValue {
    match a {
        Attr::Encoded(b) => KeyValue::decode(b).expect("the walk hands whole KeyValues"),
        Attr::Plain { key, value } => {
            let v = match value {
                Scalar::Empty => None,
                Scalar::Str(x) => Some(any_value::Value::StringValue(
                    String::from_utf8(x.to_vec()).expect("scanned"),
                )),
                Scalar::Bool(x) => Some(any_value::Value::BoolValue(x)),
                Scalar::Int(x) => Some(any_value::Value::IntValue(x)),
                Scalar::Double(x) => Some(any_value::Value::DoubleValue(x)),
                Scalar::Bytes(x) => Some(any_value::Value::BytesValue(x.to_vec())),
            };
            KeyValue {
                key: String::from_utf8(key.to_vec()).expect("scanned"),
                value: Some(AnyValue { value: v }),
                ..Default::default()
            }
        }
    }
}

/// A decoded attribute, normalised as the walk reports it (an absent value reads as empty).
fn norm(kv: &KeyValue) -> KeyValue {
    let mut kv = kv.clone();
    if kv.value.is_none() {
        kv.value = Some(AnyValue { value: None });
    }
    kv
}

#[derive(Default)]
struct Collect {
    res: Vec<KeyValue>,
    scope: Option<(String, String)>,
    name: String,
    out: Flat,
}

impl<'a> PointVisitor<'a> for Collect {
    fn resource(&mut self, attrs: Attrs<'a>) {
        self.res.clear();
        attrs
            .each(|a| self.res.push(to_kv(a)))
            .expect("well-formed");
    }
    fn scope(&mut self, scope: Option<(&'a str, &'a str)>) {
        self.scope = scope.map(|(n, v)| (n.to_string(), v.to_string()));
    }
    fn metric(&mut self, name: &'a str) -> bool {
        self.name = name.to_string();
        true
    }
    fn point(&mut self, attrs: Attrs<'a>) -> ControlFlow<()> {
        let mut p = Vec::new();
        attrs.each(|a| p.push(to_kv(a))).expect("well-formed");
        self.out
            .push((self.res.clone(), self.scope.clone(), self.name.clone(), p));
        ControlFlow::Continue(())
    }
}

fn decoded_flat(req: &ExportMetricsServiceRequest) -> Flat {
    let mut out = Flat::new();
    for rm in &req.resource_metrics {
        let res: Vec<KeyValue> = rm
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter().map(norm))
            .collect();
        for sm in &rm.scope_metrics {
            let scope = sm
                .scope
                .as_ref()
                .map(|s| (s.name.clone(), s.version.clone()));
            for m in &sm.metrics {
                point_attrs(m, |attrs| {
                    out.push((
                        res.clone(),
                        scope.clone(),
                        m.name.clone(),
                        attrs.iter().map(norm).collect(),
                    ))
                });
            }
        }
    }
    out
}

fn walk(bytes: &[u8]) -> (Walked, Flat) {
    let mut c = Collect::default();
    let w = visit_points(bytes, &mut c);
    (w, c.out)
}

/// Random attribute values of every kind, including the ones handed over encoded.
fn random_value(rng: &mut Rng) -> Option<AnyValue> {
    let v = match rng.below(10) {
        0 => return None,
        1 => None,
        2 => Some(any_value::Value::StringValue(format!("v{}", rng.below(5)))),
        3 => Some(any_value::Value::BoolValue(rng.below(2) == 1)),
        4 => Some(any_value::Value::IntValue(rng.next_u64() as i64)),
        5 => Some(any_value::Value::DoubleValue(rng.below(1000) as f64 / 7.0)),
        6 => Some(any_value::Value::BytesValue(rng.bytes(3))),
        7 => Some(any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(s("a")),
            }],
        })),
        8 => Some(any_value::Value::KvlistValue(KeyValueList {
            values: vec![kv("x", s("y"))],
        })),
        _ => Some(s("")),
    };
    Some(AnyValue { value: v })
}

fn randomise(req: &mut ExportMetricsServiceRequest, rng: &mut Rng) {
    for rm in &mut req.resource_metrics {
        if rng.below(5) == 0 {
            rm.resource = None;
        }
        for sm in &mut rm.scope_metrics {
            match rng.below(4) {
                0 => sm.scope = None,
                1 => {
                    sm.scope = Some(InstrumentationScope {
                        name: String::new(),
                        ..Default::default()
                    })
                }
                _ => {}
            }
            for m in &mut sm.metrics {
                if rng.below(6) == 0 {
                    m.data = None;
                }
                point_attrs_mut(m, |attrs| {
                    for a in attrs.iter_mut() {
                        if rng.below(3) == 0 {
                            a.value = random_value(rng);
                        }
                    }
                });
            }
        }
    }
}

#[test]
fn the_walk_reports_what_decoding_gives_for_random_requests() {
    for seed in 0..300u64 {
        let mut rng = Rng::new(seed);
        let mut req = testdata::metrics(seed, 1 + rng.below(3) as usize, 1 + rng.below(4) as usize);
        randomise(&mut req, &mut rng);
        let bytes = req.encode_to_vec();
        crate::wire::scan(crate::component::Signal::Metrics, &bytes).expect("valid");
        let (w, flat) = walk(&bytes);
        assert_eq!(w, Walked::Done, "seed {seed}");
        let want = decoded_flat(&ExportMetricsServiceRequest::decode(&bytes[..]).unwrap());
        assert_eq!(flat, want, "seed {seed}");
    }
}

/// Appends field `field` holding `content` to `out`.
fn field(out: &mut Vec<u8>, tag: u32, content: &[u8]) {
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(content.len() as u64, out);
    out.extend_from_slice(content);
}

#[test]
fn context_that_comes_after_the_content_is_reported_first() {
    let req = testdata::metrics(7, 2, 3);
    // every ResourceMetrics with its resource after its scopes, every Metric with its name last
    let mut bytes = Vec::new();
    for rm in &req.resource_metrics {
        let mut group = Vec::new();
        for sm in &rm.scope_metrics {
            let mut scope = Vec::new();
            for m in &sm.metrics {
                let mut nameless = m.clone();
                nameless.name.clear();
                let mut enc = nameless.encode_to_vec();
                field(&mut enc, 1, m.name.as_bytes());
                field(&mut scope, 2, &enc);
            }
            if let Some(s) = &sm.scope {
                field(&mut scope, 1, &s.encode_to_vec());
            }
            field(&mut group, 2, &scope);
        }
        if let Some(r) = &rm.resource {
            field(&mut group, 1, &r.encode_to_vec());
        }
        field(&mut bytes, 1, &group);
    }
    let decoded = ExportMetricsServiceRequest::decode(&bytes[..]).unwrap();
    assert_eq!(
        decoded, req,
        "the reordered encoding decodes to the same request"
    );
    let (w, flat) = walk(&bytes);
    assert_eq!(w, Walked::Done);
    assert_eq!(flat, decoded_flat(&req));
}

#[test]
fn fields_prost_would_merge_make_the_request_unusual() {
    let req = testdata::metrics(3, 1, 2);
    let plain = req.encode_to_vec();
    assert_eq!(walk(&plain).0, Walked::Done);
    // a second resource in the group
    let rm = &req.resource_metrics[0];
    let mut group = rm.encode_to_vec();
    field(
        &mut group,
        1,
        &rm.resource.as_ref().unwrap().encode_to_vec(),
    );
    let mut bytes = Vec::new();
    field(&mut bytes, 1, &group);
    assert_eq!(walk(&bytes).0, Walked::Unusual);
    // a second `data` field in a metric (a sum after a gauge: prost keeps the sum)
    let mut m = Metric {
        name: "m".into(),
        ..Default::default()
    };
    m.data = req.resource_metrics[0].scope_metrics[0].metrics[1]
        .data
        .clone();
    let mut enc = m.encode_to_vec();
    let sum = &req.resource_metrics[0].scope_metrics[0].metrics[0];
    assert!(matches!(sum.data, Some(metric::Data::Sum(_))));
    let mut sum_only = sum.clone();
    sum_only.name.clear();
    enc.extend_from_slice(&sum_only.encode_to_vec());
    let mut scope = Vec::new();
    field(&mut scope, 2, &enc);
    let mut group = Vec::new();
    field(&mut group, 2, &scope);
    let mut bytes = Vec::new();
    field(&mut bytes, 1, &group);
    assert_eq!(walk(&bytes).0, Walked::Unusual);
}

/// One group, one scope holding `metric`, encoded by hand.
fn wrap(scope_fields: &[u8], metric: &[u8]) -> Vec<u8> {
    let mut scope = scope_fields.to_vec();
    field(&mut scope, 2, metric);
    let mut group = Vec::new();
    field(&mut group, 2, &scope);
    let mut bytes = Vec::new();
    field(&mut bytes, 1, &group);
    bytes
}

#[test]
fn a_repeated_scope_or_data_variant_is_unusual_and_a_repeated_value_is_decoded() {
    let req = testdata::metrics(5, 1, 1);
    let sum = req.resource_metrics[0].scope_metrics[0].metrics[0].clone();
    assert!(matches!(sum.data, Some(metric::Data::Sum(_))));
    let sum_bytes = sum.encode_to_vec();
    // two scopes in one ScopeMetrics: prost merges them
    let scope = InstrumentationScope {
        name: "a".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut two = Vec::new();
    field(&mut two, 1, &scope);
    field(&mut two, 1, &scope);
    assert_eq!(walk(&wrap(&two, &sum_bytes)).0, Walked::Unusual);
    // the same `sum` variant twice: prost appends the second's points to the first's
    let mut twice = sum_bytes.clone();
    let mut only_data = sum.clone();
    only_data.name.clear();
    twice.extend_from_slice(&only_data.encode_to_vec());
    let bytes = wrap(&[], &twice);
    assert_eq!(
        ExportMetricsServiceRequest::decode(&bytes[..])
            .map(|r| crate::data::data_point_count(&r))
            .unwrap(),
        2,
        "prost merged the points"
    );
    assert_eq!(walk(&bytes).0, Walked::Unusual);
    // an attribute with two `value` fields (merged by prost: the later oneof wins) and one
    // with a oneof switch inside its value: both handed over encoded, decoding to prost's value
    let mut kv_bytes = Vec::new();
    field(&mut kv_bytes, 1, b"k");
    field(
        &mut kv_bytes,
        2,
        &AnyValue {
            value: Some(s("x")),
        }
        .encode_to_vec(),
    );
    field(
        &mut kv_bytes,
        2,
        &AnyValue {
            value: Some(any_value::Value::IntValue(7)),
        }
        .encode_to_vec(),
    );
    let mut switch = AnyValue {
        value: Some(s("y")),
    }
    .encode_to_vec();
    switch.extend_from_slice(
        &AnyValue {
            value: Some(any_value::Value::BoolValue(true)),
        }
        .encode_to_vec(),
    );
    let mut kv2 = Vec::new();
    field(&mut kv2, 1, b"j");
    field(&mut kv2, 2, &switch);
    let mut point = Vec::new();
    field(&mut point, 7, &kv_bytes);
    field(&mut point, 7, &kv2);
    let mut gauge = Vec::new();
    field(&mut gauge, 1, &point);
    let mut m = Vec::new();
    field(&mut m, 1, b"g");
    field(&mut m, 5, &gauge);
    let bytes = wrap(&[], &m);
    let (w, flat) = walk(&bytes);
    assert_eq!(w, Walked::Done);
    let want = decoded_flat(&ExportMetricsServiceRequest::decode(&bytes[..]).unwrap());
    assert_eq!(flat, want);
    assert_eq!(
        want[0].3[0].value.as_ref().and_then(|v| v.value.clone()),
        Some(any_value::Value::IntValue(7))
    );
    assert_eq!(
        want[0].3[1].value.as_ref().and_then(|v| v.value.clone()),
        Some(any_value::Value::BoolValue(true))
    );
    let mut kinds = Vec::new();
    let attrs = Attrs {
        msg: &point,
        field: 7,
    };
    attrs
        .each(|a| kinds.push(matches!(a, Attr::Encoded(_))))
        .unwrap();
    assert_eq!(kinds, vec![true, true]);
}

#[test]
fn a_visitor_can_stop_the_walk_and_skip_metrics() {
    struct StopAt(usize, usize);
    impl<'a> PointVisitor<'a> for StopAt {
        fn resource(&mut self, _: Attrs<'a>) {}
        fn scope(&mut self, _: Option<(&'a str, &'a str)>) {}
        fn metric(&mut self, name: &'a str) -> bool {
            name != "process.memory.usage"
        }
        fn point(&mut self, _: Attrs<'a>) -> ControlFlow<()> {
            self.1 += 1;
            if self.1 == self.0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    let bytes = testdata::metrics(1, 2, 3).encode_to_vec();
    let mut v = StopAt(4, 0);
    assert_eq!(visit_points(&bytes, &mut v), Walked::Stopped);
    assert_eq!(v.1, 4);
    // 2 groups × 5 metrics × 3 points, one metric skipped per group
    let mut v = StopAt(usize::MAX, 0);
    assert_eq!(visit_points(&bytes, &mut v), Walked::Done);
    assert_eq!(v.1, 2 * 4 * 3);
}
