//! Include / exclude selection on every signal; a Collector config block with `resource` and
//! `attributes` runs as is. (The actions themselves are tested in `processors::actions`.)

use super::*;
use crate::processors::actions::tests::{get, meta};
use crate::testdata::{kv, s};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn traces() -> Telemetry {
    let span = |name: &str, attrs: Vec<KeyValue>| Span {
        name: name.into(),
        attributes: attrs,
        ..Default::default()
    };
    let rs = |svc: &str, spans: Vec<Span>| ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", s(svc))],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        schema_url: String::new(),
    };
    Telemetry::Traces(ExportTraceServiceRequest {
        resource_spans: vec![
            rs(
                "checkout",
                vec![
                    span("GET /cart", vec![kv("db", s("pg"))]),
                    span("POST /pay", vec![]),
                ],
            ),
            rs("auth", vec![span("GET /login", vec![])]),
        ],
    })
}

fn marked(t: &Telemetry) -> Vec<String> {
    let Telemetry::Traces(r) = t else {
        return vec![];
    };
    r.resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
        .filter(|sp| get(&sp.attributes, "mark").is_some())
        .map(|sp| sp.name.clone())
        .collect()
}

#[test]
fn include_and_exclude_select_items() {
    let table = [
        ("{}", vec!["GET /cart", "POST /pay", "GET /login"]),
        (
            "{include: {match_type: strict, services: [checkout]}}",
            vec!["GET /cart", "POST /pay"],
        ),
        (
            "{include: {match_type: regexp, span_names: ['^GET ']}}",
            vec!["GET /cart", "GET /login"],
        ),
        (
            "{exclude: {match_type: regexp, span_names: ['^GET ']}}",
            vec!["POST /pay"],
        ),
        ("{include: {attributes: [{key: db}]}}", vec!["GET /cart"]),
        ("{include: {attributes: [{key: db, value: mysql}]}}", vec![]),
        (
            "{include: {resources: [{key: service.name, value: auth}]}}",
            vec!["GET /login"],
        ),
        (
            "{include: {services: [checkout]}, exclude: {span_names: ['POST /pay']}}",
            vec!["GET /cart"],
        ),
    ];
    for (sel, want) in table {
        let mut cfg: AttributesConfig = serde_norway::from_str(sel).unwrap();
        cfg.actions = serde_norway::from_str("[{key: mark, value: 1, action: insert}]").unwrap();
        let mut d = Diagnostics::default();
        cfg.validate("p", &mut d);
        assert!(d.errors.is_empty(), "{sel}: {:?}", d.errors);
        let mut t = traces();
        cfg.build()
            .process(&mut t, &meta(), &mut Rejections::default());
        assert_eq!(marked(&t), want, "{sel}");
    }
}

#[test]
fn log_severity_and_metric_names_select() {
    let mut logs = Telemetry::Logs(crate::testdata::logs(1, 1, 4)); // severities 5, 9, 13, 17
    let cfg: AttributesConfig =
        serde_norway::from_str("{include: {log_severity_number: {min: WARN}}, actions: [{key: mark, value: 1, action: insert}]}").unwrap();
    cfg.build()
        .process(&mut logs, &meta(), &mut Rejections::default());
    let Telemetry::Logs(r) = &logs else { panic!() };
    let sev: Vec<i32> = r.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .filter(|l| get(&l.attributes, "mark").is_some())
        .map(|l| l.severity_number)
        .collect();
    assert_eq!(sev, vec![13, 17]);

    let mut metrics = Telemetry::Metrics(crate::testdata::metrics(1, 1, 2));
    let cfg: AttributesConfig = serde_norway::from_str(
        "{include: {match_type: regexp, metric_names: ['^http\\.']}, actions: [{key: region, action: delete}]}",
    )
    .unwrap();
    cfg.build()
        .process(&mut metrics, &meta(), &mut Rejections::default());
    let Telemetry::Metrics(r) = &metrics else {
        panic!()
    };
    for m in &r.resource_metrics[0].scope_metrics[0].metrics {
        let has_region = match &m.data {
            Some(Data::Sum(s)) => get(&s.data_points[0].attributes, "region").is_some(),
            Some(Data::Gauge(g)) => get(&g.data_points[0].attributes, "region").is_some(),
            Some(Data::Histogram(h)) => get(&h.data_points[0].attributes, "region").is_some(),
            Some(Data::ExponentialHistogram(h)) => {
                get(&h.data_points[0].attributes, "region").is_some()
            }
            Some(Data::Summary(s)) => get(&s.data_points[0].attributes, "region").is_some(),
            None => true,
        };
        assert_eq!(has_region, !m.name.starts_with("http."), "{}", m.name);
    }
}

/// The processor blocks of a real Collector config, unchanged.
#[test]
fn a_collector_config_block_runs_as_is() {
    let yaml = r#"
receivers:
  otlp:
    protocols:
      grpc:
processors:
  resource:
    attributes:
      - key: environment
        value: production
        action: upsert
      - key: service.namespace
        value: shop
        action: upsert
  attributes/pii:
    actions:
      - key: user.email
        action: hash
      - key: db.statement
        action: delete
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [resource, attributes/pii]
      exporters: [debug]
"#;
    let cfg = crate::config::load_sources(
        &[crate::config::Source {
            name: "collector.yaml".into(),
            text: yaml.into(),
        }],
        &|_| None,
    )
    .unwrap();
    let mut t = Telemetry::Traces(crate::testdata::traces(1, 2, 3));
    if let Telemetry::Traces(r) = &mut t {
        r.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .push(kv("user.email", s("bob@example.com")));
        r.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .push(kv("db.statement", s("select 1")));
    }
    let reg = crate::telemetry::metrics::Registry::new();
    for name in ["resource", "attributes/pii"] {
        let id = crate::component::ComponentId::parse(name).unwrap();
        match cfg.processors[&id].build(
            &id,
            crate::component::Signal::Traces,
            &reg,
            &Default::default(),
        ) {
            super::super::Built::Inline(p) => {
                p.process(&mut t, &meta(), &mut Rejections::default())
            }
            _ => panic!(),
        }
    }
    let Telemetry::Traces(r) = &t else { panic!() };
    for rs in &r.resource_spans {
        let res = &rs.resource.as_ref().unwrap().attributes;
        assert_eq!(get(res, "environment"), Some(s("production")));
        assert_eq!(
            get(res, "service.namespace"),
            Some(s("shop")),
            "upsert replaced the existing value"
        );
    }
    let span = &r.resource_spans[0].scope_spans[0].spans[0];
    assert!(get(&span.attributes, "db.statement").is_none());
    assert!(
        matches!(get(&span.attributes, "user.email"), Some(Value::StringValue(h)) if h.len() == 64)
    );
}
