//! Table-driven tests: one row per action and case; matching; a Collector config block.

use super::*;
use crate::testdata::{kv, s};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn actions(yaml: &str) -> Vec<Action> {
    let cfgs: Vec<ActionConfig> = serde_yaml::from_str(yaml).unwrap();
    let mut d = Diagnostics::default();
    let a = compile_all(&cfgs, "actions", &mut d);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    a
}

fn attrs() -> Vec<KeyValue> {
    vec![
        kv("http.url", s("https://shop.example.com:8443/cart?id=7")),
        kv("user.email", s("ann@example.com")),
        kv("status", s("404")),
        kv("ratio", Value::DoubleValue(0.75)),
        kv("secret.token", s("t0k")),
        kv("secret.key", s("k3y")),
    ]
}

fn get(a: &[KeyValue], k: &str) -> Option<Value> {
    a.iter()
        .find(|kv| kv.key == k)
        .and_then(|kv| kv.value.clone()?.value)
}

fn meta() -> RequestMeta {
    RequestMeta {
        client_address: Some("10.1.2.3:5555".parse().unwrap()),
        headers: vec![("x-tenant".into(), "acme".into())],
        wire_size: 0,
    }
}

#[test]
fn each_action_does_what_the_collector_does() {
    type Check = fn(&[KeyValue]) -> bool;
    let table: Vec<(&str, &str, Check)> = vec![
        ("insert adds a missing key", "[{key: env, value: prod, action: insert}]", |a| get(a, "env") == Some(s("prod"))),
        ("insert keeps an existing key", "[{key: status, value: '200', action: insert}]", |a| get(a, "status") == Some(s("404"))),
        ("update changes an existing key", "[{key: status, value: 500, action: update}]", |a| get(a, "status") == Some(Value::IntValue(500))),
        ("update ignores a missing key", "[{key: env, value: prod, action: update}]", |a| get(a, "env").is_none()),
        ("upsert adds", "[{key: env, value: true, action: upsert}]", |a| get(a, "env") == Some(Value::BoolValue(true))),
        ("upsert replaces", "[{key: ratio, value: 1.5, action: upsert}]", |a| get(a, "ratio") == Some(Value::DoubleValue(1.5))),
        ("from_attribute copies", "[{key: copy, from_attribute: status, action: insert}]", |a| get(a, "copy") == Some(s("404"))),
        ("from_attribute missing leaves all", "[{key: copy, from_attribute: nope, action: insert}]", |a| get(a, "copy").is_none() && a.len() == 6),
        ("from_context metadata", "[{key: tenant, from_context: metadata.X-Tenant, action: upsert}]", |a| get(a, "tenant") == Some(s("acme"))),
        ("from_context client.address", "[{key: client, from_context: client.address, action: upsert}]", |a| get(a, "client") == Some(s("10.1.2.3"))),
        ("delete by key", "[{key: user.email, action: delete}]", |a| get(a, "user.email").is_none() && a.len() == 5),
        ("delete by pattern", "[{pattern: '^secret\\.', action: delete}]", |a| a.len() == 4 && get(a, "secret.key").is_none()),
        (
            "hash is sha-256 hex",
            "[{key: user.email, action: hash}]",
            |a| matches!(get(a, "user.email"), Some(Value::StringValue(h)) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())),
        ),
        ("hash by pattern", "[{pattern: '^secret', action: hash}]", |a| matches!(get(a, "secret.key"), Some(Value::StringValue(h)) if h.len() == 64)),
        (
            "extract named groups",
            "[{key: http.url, pattern: '^(?P<scheme>[a-z]+)://(?P<host>[^:/]+)', action: extract}]",
            |a| get(a, "scheme") == Some(s("https")) && get(a, "host") == Some(s("shop.example.com")) && get(a, "http.url").is_some(),
        ),
        ("extract without match changes nothing", "[{key: status, pattern: '^(?P<x>[a-z]+)$', action: extract}]", |a| a.len() == 6),
        ("convert string to int", "[{key: status, action: convert, converted_type: int}]", |a| get(a, "status") == Some(Value::IntValue(404))),
        ("convert double to string", "[{key: ratio, action: convert, converted_type: string}]", |a| get(a, "ratio") == Some(s("0.75"))),
        ("convert failure leaves the value", "[{key: user.email, action: convert, converted_type: double}]", |a| get(a, "user.email") == Some(s("ann@example.com"))),
        (
            "actions run in order",
            "[{key: a, value: x, action: insert}, {key: b, from_attribute: a, action: insert}, {key: a, action: delete}]",
            |a| get(a, "a").is_none() && get(a, "b") == Some(s("x")),
        ),
    ];
    for (name, yaml, check) in table {
        let mut a = attrs();
        apply(&actions(yaml), &mut a, &meta());
        assert!(check(&a), "{name}: {a:?}");
    }
    // the exact digest, computed independently: sha256("ann@example.com")
    let mut a = attrs();
    apply(
        &actions("[{key: user.email, action: hash}]"),
        &mut a,
        &meta(),
    );
    let expected = {
        let d = Sha256::digest(b"ann@example.com");
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(get(&a, "user.email"), Some(s(&expected)));
}

#[test]
fn invalid_actions_name_their_path() {
    let cfgs: Vec<ActionConfig> = serde_yaml::from_str(
        "[{action: insert, value: x}, {key: a, action: upsert}, {action: delete}, {key: u, pattern: '(', action: extract}, {key: u, pattern: '[a-z]+', action: extract}, {key: c, action: convert, converted_type: bool}, {key: c, from_context: auth.user, action: insert}]",
    )
    .unwrap();
    let mut d = Diagnostics::default();
    compile_all(&cfgs, "processors.attributes.actions", &mut d);
    let paths: Vec<&str> = d.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "processors.attributes.actions[0].key",
            "processors.attributes.actions[1]",
            "processors.attributes.actions[2]",
            "processors.attributes.actions[3].pattern",
            "processors.attributes.actions[4].pattern",
            "processors.attributes.actions[5].converted_type",
            "processors.attributes.actions[6].from_context",
        ],
        "{:?}",
        d.errors
    );
}

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
        let mut cfg: AttributesConfig = serde_yaml::from_str(sel).unwrap();
        cfg.actions = serde_yaml::from_str("[{key: mark, value: 1, action: insert}]").unwrap();
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
        serde_yaml::from_str("{include: {log_severity_number: {min: WARN}}, actions: [{key: mark, value: 1, action: insert}]}").unwrap();
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
    let cfg: AttributesConfig = serde_yaml::from_str(
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
        let id = crate::config::ComponentId::parse(name).unwrap();
        match cfg.processors[&id].build(&id, &reg) {
            super::super::Built::Inline(p) => {
                p.process(&mut t, &meta(), &mut Rejections::default())
            }
            super::super::Built::Batch(_) | super::super::Built::Nothing => panic!(),
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
