//! `httpcheck` config validation (every problem at its path), the metrics one collection makes,
//! and single checks against a live and a dead local port.

use super::scrape::{to_request, Observation, SCOPE_NAME};
use super::*;
use crate::component::typed;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point, Metric};

fn parse(yaml: &str) -> (Option<HttpCheckConfig>, Diagnostics) {
    let mut diag = Diagnostics::default();
    let v: Value = serde_norway::from_str(yaml).unwrap();
    let c = typed::<HttpCheckConfig>("receivers.httpcheck", v, &mut diag);
    if let Some(c) = &c {
        c.validate("receivers.httpcheck", &mut diag);
    }
    (c, diag)
}

fn issues(list: &[crate::component::Issue]) -> Vec<String> {
    list.iter().map(|i| i.to_string()).collect()
}

#[test]
fn defaults_are_the_collectors() {
    let (c, diag) = parse("targets: [{endpoint: 'http://127.0.0.1:8080/health'}]");
    let c = c.unwrap();
    assert!(
        diag.errors.is_empty() && diag.warnings.is_empty(),
        "{diag:?}"
    );
    assert_eq!(
        c.collection_interval.get(),
        std::time::Duration::from_secs(60)
    );
    assert_eq!(c.initial_delay.get(), std::time::Duration::from_secs(1));
    assert_eq!(c.targets[0].method, "GET");
    assert_eq!(c.metrics_enabled(), [true; 3]);
    // no timeout anywhere: a check is bounded by the collection interval
    assert_eq!(
        c.request_timeout(&c.targets[0]),
        std::time::Duration::from_secs(60)
    );
}

#[test]
fn the_readme_example_validates() {
    let (c, diag) = parse(
        r#"
collection_interval: 30s
targets:
  - method: "GET"
    endpoints: ["https://opentelemetry.io"]
  - method: "GET"
    endpoints: ["http://localhost:8080/hello1", "http://localhost:8080/hello2"]
    headers: {Authorization: "Bearer <your_bearer_token>"}
  - method: "POST"
    endpoint: "http://localhost:8080/hello"
    body: '{"ping": true}'
    timeout: 5s
    tls: {ca_file: /etc/ssl/ca.pem}
"#,
    );
    assert!(
        diag.errors.is_empty() && diag.warnings.is_empty(),
        "{diag:?}"
    );
    let c = c.unwrap();
    let urls: Vec<&str> = c.targets.iter().flat_map(|t| t.urls()).collect();
    assert_eq!(urls.len(), 4);
    assert_eq!(urls[3], "http://localhost:8080/hello");
}

#[test]
fn no_targets_is_an_error() {
    for yaml in ["{}", "targets: []"] {
        let (_, diag) = parse(yaml);
        assert_eq!(
            issues(&diag.errors),
            ["receivers.httpcheck.targets: no targets configured"]
        );
    }
}

#[test]
fn every_bad_target_is_reported_at_its_path() {
    let (_, diag) = parse(
        r#"
collection_interval: 0s
targets:
  - method: GET
  - endpoint: "localhost:8080"
    endpoints: ["ftp://files.example.com/x", "http://ok.example.com"]
    method: "GE T"
    headers: {"bad header": x}
"#,
    );
    let errors = issues(&diag.errors);
    let at = |p: &str| errors.iter().any(|e| e.starts_with(&format!("{p}: ")));
    assert!(at("receivers.httpcheck.targets[0]"), "{errors:#?}");
    assert!(errors[0].contains("endpoint or endpoints"), "{errors:#?}");
    assert!(at("receivers.httpcheck.targets[1].endpoint"), "{errors:#?}");
    assert!(
        at("receivers.httpcheck.targets[1].endpoints[0]"),
        "{errors:#?}"
    );
    assert!(
        !at("receivers.httpcheck.targets[1].endpoints[1]"),
        "{errors:#?}"
    );
    assert!(at("receivers.httpcheck.targets[1].method"), "{errors:#?}");
    assert!(
        at("receivers.httpcheck.targets[1].headers.bad header"),
        "{errors:#?}"
    );
    assert!(at("receivers.httpcheck.collection_interval"), "{errors:#?}");
    assert_eq!(errors.len(), 6, "{errors:#?}");
}

#[test]
fn an_unknown_key_is_an_error_with_its_path() {
    let (c, diag) = parse("targets: [{endpoint: 'http://a', methd: GET}]");
    assert!(c.is_none());
    let errors = issues(&diag.errors);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("receivers.httpcheck.targets[0]") && errors[0].contains("methd"),
        "{errors:?}"
    );
}

#[test]
fn collector_keys_without_effect_are_accepted_with_a_warning_at_their_path() {
    let (c, diag) = parse(
        r#"
sequences: [{name: login, steps: []}]
targets:
  - endpoint: https://api.example.com/health
    validations: [{contains: ok}]
    auto_content_type: true
    proxy_url: http://proxy:3128
    disable_keep_alives: true
    auth: {authenticator: bearertokenauth}
    tls: {insecure_skip_verify: true, server_name_override: api.internal}
"#,
    );
    assert!(c.is_some());
    assert!(diag.errors.is_empty(), "{diag:?}");
    let warnings = issues(&diag.warnings);
    for p in [
        "receivers.httpcheck.sequences",
        "receivers.httpcheck.targets[0].validations",
        "receivers.httpcheck.targets[0].auto_content_type",
        "receivers.httpcheck.targets[0].proxy_url",
        "receivers.httpcheck.targets[0].disable_keep_alives",
        "receivers.httpcheck.targets[0].auth",
        "receivers.httpcheck.targets[0].tls.insecure_skip_verify",
        "receivers.httpcheck.targets[0].tls.server_name_override",
    ] {
        assert!(
            warnings.iter().any(|w| w.starts_with(&format!("{p}: "))),
            "no warning at {p}: {warnings:#?}"
        );
    }
    assert_eq!(warnings.len(), 8, "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.contains("NOT verified")));
}

#[test]
fn metrics_switches() {
    let (c, diag) = parse(
        r#"
targets: [{endpoint: 'http://a'}]
metrics:
  httpcheck.duration: {enabled: false}
  httpcheck.tls.cert_remaining: {enabled: true}
  httpcheck.response.size: {enabled: false}
"#,
    );
    assert!(diag.errors.is_empty(), "{diag:?}");
    assert_eq!(
        issues(&diag.warnings),
        [
            "receivers.httpcheck.metrics.httpcheck.tls.cert_remaining: an optional Collector \
          metric otelgw does not emit; it stays off"
        ]
    );
    assert_eq!(c.unwrap().metrics_enabled(), [false, true, true]);

    let (_, diag) =
        parse("targets: [{endpoint: 'http://a'}]\nmetrics: {httpcheck.statuz: {enabled: false}}");
    assert_eq!(diag.errors.len(), 1);
    assert!(diag.errors[0]
        .to_string()
        .starts_with("receivers.httpcheck.metrics.httpcheck.statuz: unknown metric"));
}

#[test]
fn request_timeout_is_the_shorter_of_the_configured_ones() {
    let (c, _) = parse(
        r#"
collection_interval: 10s
timeout: 3s
targets: [{endpoint: 'http://a', timeout: 1s}, {endpoint: 'http://b', timeout: 5s}, {endpoint: 'http://c'}]
"#,
    );
    let c = c.unwrap();
    let secs = |i: usize| c.request_timeout(&c.targets[i]).as_secs();
    assert_eq!((secs(0), secs(1), secs(2)), (1, 3, 3));
}

#[test]
fn httpcheck_feeds_metrics_pipelines_only() {
    let yaml = |signal: &str| {
        format!(
            "receivers:\n  http_check:\n    targets: [{{endpoint: 'http://127.0.0.1:1'}}]\n\
             exporters:\n  debug:\nservice:\n  pipelines:\n    {signal}:\n      \
             receivers: [http_check]\n      exporters: [debug]\n"
        )
    };
    let load = |text: String| {
        crate::config::load_sources(
            &[crate::config::Source {
                name: "test.yaml".into(),
                text,
            }],
            &|_| None,
        )
    };
    assert!(load(yaml("metrics")).is_ok());
    for signal in ["traces", "logs"] {
        let e = load(yaml(signal)).unwrap_err();
        let errors = issues(&e.errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!("service.pipelines.{signal}.receivers[0]: "))
                && errors[0].contains("supports metrics"),
            "{errors:?}"
        );
    }
}

fn obs(url: &str, outcome: Result<u16, String>) -> Observation {
    Observation {
        url: url.into(),
        method: "GET".into(),
        time: 2_000,
        duration_ms: 7,
        outcome,
    }
}

fn metric<'a>(ms: &'a [Metric], name: &str) -> &'a Metric {
    ms.iter().find(|m| m.name == name).unwrap()
}

/// One point: attributes as text, value, start, time.
type Point = (Vec<(String, String)>, i64, u64, u64);

fn points(m: &Metric) -> Vec<Point> {
    let dps = match m.data.as_ref().unwrap() {
        Data::Gauge(g) => &g.data_points,
        Data::Sum(s) => {
            assert!(!s.is_monotonic);
            assert_eq!(s.aggregation_temporality, 2, "cumulative");
            &s.data_points
        }
        other => panic!("unexpected {other:?}"),
    };
    dps.iter()
        .map(|p| {
            let attrs = p
                .attributes
                .iter()
                .map(|kv| {
                    let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(Any::StringValue(s)) => s.clone(),
                        Some(Any::IntValue(i)) => format!("int:{i}"),
                        other => panic!("unexpected {other:?}"),
                    };
                    (kv.key.clone(), v)
                })
                .collect();
            let Some(number_data_point::Value::AsInt(v)) = p.value else {
                panic!("not an int point")
            };
            (attrs, v, p.start_time_unix_nano, p.time_unix_nano)
        })
        .collect()
}

#[test]
fn one_collection_as_the_collector_reports_it() {
    let found = [
        obs("http://up", Ok(200)),
        obs("http://down", Ok(503)),
        obs("http://dead", Err("connection refused".into())),
    ];
    let req = to_request(&found, 1_000, [true; 3]).unwrap();
    let sm = &req.resource_metrics[0].scope_metrics[0];
    assert_eq!(sm.scope.as_ref().unwrap().name, SCOPE_NAME);
    let names: Vec<(&str, &str)> = sm
        .metrics
        .iter()
        .map(|m| (m.name.as_str(), m.unit.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("httpcheck.duration", "ms"),
            ("httpcheck.error", "{error}"),
            ("httpcheck.status", "1")
        ]
    );
    let d = points(metric(&sm.metrics, "httpcheck.duration"));
    assert!(matches!(sm.metrics[0].data, Some(Data::Gauge(_))));
    assert_eq!(d.len(), 3);
    assert_eq!(
        d[0],
        (
            vec![("http.url".into(), "http://up".into())],
            7,
            1_000,
            2_000
        )
    );

    let e = points(metric(&sm.metrics, "httpcheck.error"));
    assert_eq!(
        e,
        [(
            vec![
                ("http.url".into(), "http://dead".into()),
                ("error.message".into(), "connection refused".into())
            ],
            1,
            1_000,
            2_000
        )]
    );

    let s = points(metric(&sm.metrics, "httpcheck.status"));
    assert_eq!(s.len(), 15);
    let row = |url: &str| -> Vec<(String, String, i64)> {
        s.iter()
            .filter(|(a, ..)| a[0].1 == url)
            .map(|(a, v, ..)| {
                assert_eq!(a[0].0, "http.url");
                assert_eq!(
                    (a[1].0.as_str(), a[2].0.as_str()),
                    ("http.status_code", "http.method")
                );
                assert_eq!(a[2].1, "GET");
                assert_eq!(a[3].0, "http.status_class");
                (a[1].1.clone(), a[3].1.clone(), *v)
            })
            .collect()
    };
    let classes = |code: &str, hot: Option<&str>| -> Vec<(String, String, i64)> {
        ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .iter()
            .map(|c| (code.to_string(), c.to_string(), i64::from(Some(*c) == hot)))
            .collect()
    };
    assert_eq!(row("http://up"), classes("int:200", Some("2xx")));
    assert_eq!(row("http://down"), classes("int:503", Some("5xx")));
    assert_eq!(row("http://dead"), classes("int:0", None));
}

#[test]
fn no_error_metric_without_errors_and_disabled_metrics_are_left_out() {
    let found = [obs("http://up", Ok(204))];
    let req = to_request(&found, 1, [true; 3]).unwrap();
    let names: Vec<&str> = req.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["httpcheck.duration", "httpcheck.status"]);

    let req = to_request(&found, 1, [false, true, true]).unwrap();
    assert_eq!(req.resource_metrics[0].scope_metrics[0].metrics.len(), 1);
    assert!(to_request(&found, 1, [false, true, false]).is_none());
    assert!(to_request(&[], 1, [true; 3]).is_none());
}

fn context() -> crate::receivers::ReceiverContext {
    crate::receivers::ReceiverContext {
        id: crate::component::ComponentId::parse("httpcheck").unwrap(),
        traces: Default::default(),
        metrics: Default::default(),
        logs: Default::default(),
        registry: crate::telemetry::metrics::Registry::new(),
        gate: None,
        authenticators: Default::default(),
        storage: None,
    }
}

#[tokio::test]
async fn a_check_stuck_on_a_silent_server_ends_when_the_receiver_stops() {
    // accepts connections and never answers
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let (c, _) = parse(&format!(
        "initial_delay: 0s\ntimeout: 1h\ntargets: [{{endpoint: 'http://127.0.0.1:{port}/'}}]"
    ));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = spawn(&c.unwrap(), &context(), stop_rx).unwrap();
    // the check is under way once the connection arrives
    let (_conn, _) = tokio::time::timeout(std::time::Duration::from_secs(10), silent.accept())
        .await
        .unwrap()
        .unwrap();
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(2), task)
        .await
        .expect("the receiver's task ends promptly")
        .unwrap();
}
