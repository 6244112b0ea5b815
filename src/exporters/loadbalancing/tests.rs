#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use super::ring::Ring;
use super::split::split;
use super::*;
use crate::data::Telemetry;
use crate::testdata;
use prost::Message;

fn ring(n: usize) -> Ring {
    Ring::new((0..n).map(|i| format!("b{i}:4317")).collect())
}

fn cfg(yaml: &str) -> LoadBalancingConfig {
    serde_norway::from_str(yaml).unwrap()
}

#[test]
fn trace_id_routing_keeps_every_trace_whole_and_loses_nothing() {
    // many traces, their spans spread over requests with several resources and scopes
    let mut req = testdata::traces(3, 4, 200);
    for (i, s) in req
        .resource_spans
        .iter_mut()
        .flat_map(|r| &mut r.scope_spans)
        .flat_map(|s| &mut s.spans)
        .enumerate()
    {
        s.trace_id = vec![(i % 37) as u8; 16];
    }
    let total = Telemetry::Traces(req.clone()).item_count();
    let r = ring(4);
    let parts = split(Telemetry::Traces(req), RoutingKey::TraceId, &[], &r);
    let mut owner: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut n = 0;
    for (b, part) in &parts {
        let Telemetry::Traces(t) = part else { panic!() };
        for rs in &t.resource_spans {
            assert!(rs.resource.is_some(), "the resource travels with its spans");
            for ss in &rs.scope_spans {
                assert!(ss.scope.is_some());
                for s in &ss.spans {
                    n += 1;
                    let prev = owner.insert(s.trace_id.clone(), *b);
                    assert!(prev.is_none() || prev == Some(*b), "a trace was split");
                }
            }
        }
    }
    assert_eq!(n, total);
    let used: BTreeSet<usize> = owner.values().copied().collect();
    assert!(used.len() >= 3, "37 traces over 4 backends: {used:?}");
}

#[test]
fn stream_id_routing_keeps_every_series_on_one_backend() {
    let req = testdata::metrics(9, 3, 40);
    let total = Telemetry::Metrics(req.clone()).item_count();
    let r = ring(3);
    let parts = split(Telemetry::Metrics(req), RoutingKey::StreamId, &[], &r);
    let mut owner: BTreeMap<(String, Vec<u8>, String), usize> = BTreeMap::new();
    let mut n = 0;
    for (b, part) in &parts {
        let Telemetry::Metrics(m) = part else {
            panic!()
        };
        n += Telemetry::Metrics(m.clone()).item_count();
        for rm in &m.resource_metrics {
            let res = rm
                .resource
                .as_ref()
                .map(|r| r.encode_to_vec())
                .unwrap_or_default();
            for sm in &rm.scope_metrics {
                for metric in &sm.metrics {
                    let attrs: Vec<String> = match &metric.data {
                        Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Gauge(g)) => g
                            .data_points
                            .iter()
                            .map(|p| format!("{:?}", p.attributes))
                            .collect(),
                        Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(g)) => g
                            .data_points
                            .iter()
                            .map(|p| format!("{:?}", p.attributes))
                            .collect(),
                        _ => vec![],
                    };
                    for a in attrs {
                        let prev = owner.insert((metric.name.clone(), res.clone(), a), *b);
                        assert!(prev.is_none() || prev == Some(*b), "a series was split");
                    }
                }
            }
        }
    }
    assert_eq!(n, total, "every point sent once");
    assert!(parts.len() > 1);
}

#[test]
fn service_routing_sends_whole_resources_and_logs_follow_their_trace() {
    let req = testdata::traces(4, 6, 5);
    let parts = split(
        Telemetry::Traces(req.clone()),
        RoutingKey::Service,
        &[],
        &ring(3),
    );
    let n: u64 = parts.iter().map(|(_, p)| p.item_count()).sum();
    assert_eq!(n, Telemetry::Traces(req).item_count());
    for (_, p) in &parts {
        let Telemetry::Traces(t) = p else { panic!() };
        for rs in &t.resource_spans {
            assert_eq!(
                rs.scope_spans.iter().map(|s| s.spans.len()).sum::<usize>(),
                5
            );
        }
    }
    let logs = testdata::logs(2, 2, 50);
    let total = Telemetry::Logs(logs.clone()).item_count();
    let parts = split(Telemetry::Logs(logs), RoutingKey::TraceId, &[], &ring(2));
    assert_eq!(
        parts.iter().map(|(_, p)| p.item_count()).sum::<u64>(),
        total
    );
}

#[test]
fn validation_lists_every_problem() {
    let mut d = Diagnostics::default();
    cfg("{routing_key: attributes, resolver: {static: {hostnames: []}, k8s: {service: Bad_Name}}}")
        .validate("exporters.loadbalancing", &mut d);
    let paths: Vec<&str> = d.errors.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "exporters.loadbalancing.resolver",
        "exporters.loadbalancing.resolver.k8s.service",
        "exporters.loadbalancing.resolver.static.hostnames",
        "exporters.loadbalancing.routing_attributes",
    ] {
        assert!(paths.contains(&p), "{p} not in {paths:?}");
    }
    let mut d = Diagnostics::default();
    cfg("{protocol: {otlp: {tls: {insecure: true}, timeout: 1s}}, resolver: {dns: {hostname: otelgw-gateway-headless, port: 4317}}}")
        .validate("e", &mut d);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert!(serde_norway::from_str::<LoadBalancingConfig>("{routing_key: spanID}").is_err());
    assert_eq!(with_port("gw-1"), "gw-1:4317");
    assert_eq!(with_port("gw-1:5317"), "gw-1:5317");
    assert_eq!(with_port("[::1]:4317"), "[::1]:4317");
}

#[test]
fn attribute_order_does_not_move_a_resource_or_a_series() {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    let r = ring(5);
    let kvs = |order: &[usize]| -> Vec<KeyValue> {
        let all = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")];
        order
            .iter()
            .map(|i| testdata::kv(all[*i].0, testdata::s(all[*i].1)))
            .collect()
    };
    for n in 0..20 {
        let mut one = testdata::metrics(n, 1, 8);
        let mut two = one.clone();
        one.resource_metrics[0]
            .resource
            .as_mut()
            .unwrap()
            .attributes = kvs(&[0, 1, 2, 3]);
        two.resource_metrics[0]
            .resource
            .as_mut()
            .unwrap()
            .attributes = kvs(&[3, 1, 0, 2]);
        for key in [RoutingKey::Resource, RoutingKey::StreamId] {
            let a: Vec<usize> = split(Telemetry::Metrics(one.clone()), key, &[], &r)
                .into_iter()
                .map(|(b, _)| b)
                .collect();
            let b: Vec<usize> = split(Telemetry::Metrics(two.clone()), key, &[], &r)
                .into_iter()
                .map(|(b, _)| b)
                .collect();
            assert_eq!(a, b, "{key:?}");
        }
    }
}

/// `traceID` routing on the encoding gives each backend exactly what the decoded split gives it
/// (same spans, resources and scopes, in the same order), for requests of many shapes, and a
/// request owned by one backend goes as the same bytes.
#[test]
fn trace_id_routing_on_the_wire_matches_the_decoded_split() {
    use super::split::split_encoded_traces;
    for seed in 0..60u64 {
        let resources = 1 + (seed % 4) as usize;
        let spans = 1 + (seed * 7 % 90) as usize;
        let mut req = testdata::traces(seed, resources, spans);
        let traces = 1 + seed % 13;
        for (i, s) in req
            .resource_spans
            .iter_mut()
            .flat_map(|r| &mut r.scope_spans)
            .flat_map(|s| &mut s.spans)
            .enumerate()
        {
            // a few spans without a trace id, the rest over `traces` traces
            s.trace_id = if i % 17 == 16 {
                vec![]
            } else {
                vec![((i as u64 * 31 + seed) % traces) as u8; 16]
            };
        }
        let r = ring(1 + (seed % 5) as usize);
        let decoded = Telemetry::Traces(req.clone());
        let e = Encoded {
            signal: crate::component::Signal::Traces,
            items: decoded.item_count(),
            bytes: decoded.encode_to_bytes(),
        };
        let wire = split_encoded_traces(&e, &r).expect("a well-formed request");
        let want = split(decoded, RoutingKey::TraceId, &[], &r);
        assert_eq!(wire.len(), want.len(), "seed {seed}");
        for ((wb, we), (db, dt)) in wire.iter().zip(&want) {
            assert_eq!(wb, db, "seed {seed}: the same backends");
            assert_eq!(we.items, dt.item_count(), "seed {seed}");
            let got = Telemetry::decode_proto(crate::component::Signal::Traces, &we.bytes)
                .expect("decodes");
            assert_eq!(
                &got, dt,
                "seed {seed}: backend {wb} gets what the decoded split gives"
            );
        }
        if wire.len() == 1 {
            assert_eq!(
                wire[0].1.bytes, e.bytes,
                "one owner: the request as it came"
            );
        }
    }
}
