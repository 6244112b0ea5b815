//! transform: the Collector's documented behaviour as table tests, each run on the decoded
//! request and — when the processor takes the fast path — on the encoding, which must agree.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::*;
use crate::testdata;

fn config(yaml: &str) -> TransformConfig {
    let cfg: TransformConfig = serde_norway::from_str(yaml).unwrap();
    let mut d = Diagnostics::default();
    cfg.validate("processors.transform", &mut d);
    assert!(d.errors.is_empty(), "{yaml}: {:?}", d.errors);
    cfg
}

fn errors(yaml: &str) -> Vec<String> {
    let cfg: TransformConfig = serde_norway::from_str(yaml).unwrap();
    let mut d = Diagnostics::default();
    cfg.validate("processors.transform", &mut d);
    d.errors.iter().map(|e| e.to_string()).collect()
}

/// Spans with names that carry a query, and one health check per resource.
fn spans() -> Telemetry {
    let mut r = testdata::traces(5, 2, 4);
    for rs in &mut r.resource_spans {
        for (i, s) in rs
            .scope_spans
            .iter_mut()
            .flat_map(|ss| &mut ss.spans)
            .enumerate()
        {
            s.name = match i {
                0 => "GET /api/products?id=7".into(),
                1 => "GET /api/products/OLJCESPC7Z".into(),
                2 => "GET /healthz".into(),
                _ => s.name.clone(),
            };
        }
    }
    Telemetry::Traces(r)
}

fn meta() -> RequestMeta {
    RequestMeta::default()
}

/// Runs the processor on the decoded request and, on the fast path, on the encoding; both
/// must give the same request. Returns it and the processor's rejections.
fn run(signal: Signal, cfg: &TransformConfig, input: &Telemetry) -> (Telemetry, Rejections) {
    let p = cfg.build("transform", signal, &Registry::default());
    let mut decoded = input.clone();
    let mut rejected = Rejections::default();
    p.process(&mut decoded, &meta(), &mut rejected);
    if p.reads() == Reads::Items {
        let bytes = input.encode_to_bytes();
        let out =
            crate::wire::edit_items(signal, &bytes, |item| p.edit_item(item, &meta())).unwrap();
        let wire = Telemetry::decode_proto(signal, &out.bytes).unwrap();
        assert_eq!(wire, decoded, "the wire path and the decoded path disagree");
    }
    (decoded, rejected)
}

fn all_spans(t: &Telemetry) -> Vec<&Span> {
    let Telemetry::Traces(r) = t else {
        panic!("traces")
    };
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect()
}

fn attr<'a>(attrs: &'a [KeyValue], k: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == k)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

#[test]
fn the_otel_demo_block_normalises_span_names_on_the_wire() {
    let cfg = config(
        r#"
error_mode: ignore
trace_statements:
  - context: span
    statements:
      - replace_pattern(name, "\\?.*", "")
      - replace_match(name, "GET /api/products/*", "GET /api/products/{productId}")
"#,
    );
    let p = cfg.build("transform", Signal::Traces, &Registry::default());
    assert_eq!(
        p.reads(),
        Reads::Items,
        "the demo's statements run on the encoding"
    );
    let (out, _) = run(Signal::Traces, &cfg, &spans());
    let names: Vec<&str> = all_spans(&out).iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names[0], "GET /api/products");
    assert_eq!(names[1], "GET /api/products/{productId}");
    assert_eq!(names[2], "GET /healthz");
    assert_eq!(names[3], "GET /api/v1/orders/3");
}

#[test]
fn span_statements_do_what_the_collector_documents() {
    type Check = fn(&Span) -> bool;
    let table: Vec<(&str, Check)> = vec![
        (
            r#"set(attributes["env"], "prod") where kind == SPAN_KIND_SERVER"#,
            |s| attr(&s.attributes, "env") == Some(&s_("prod")),
        ),
        (
            r#"set(attributes["env"], "prod") where kind == SPAN_KIND_CLIENT"#,
            |s| attr(&s.attributes, "env").is_none(),
        ),
        (r#"delete_key(attributes, "url.full")"#, |s| {
            attr(&s.attributes, "url.full").is_none() && s.attributes.len() == 7
        }),
        (
            r#"keep_keys(attributes, ["http.route", "cache.hit"])"#,
            |s| s.attributes.len() == 2,
        ),
        (r#"delete_matching_keys(attributes, "^http\\.")"#, |s| {
            s.attributes.len() == 5
        }),
        (r#"keep_matching_keys(attributes, "^http\\.")"#, |s| {
            s.attributes.len() == 3
        }),
        (
            r#"set(attributes["copy"], attributes["http.route"])"#,
            |s| attr(&s.attributes, "copy") == Some(&s_("/api/v1/orders/{id}")),
        ),
        (r#"set(attributes["missing"], attributes["nope"])"#, |s| {
            attr(&s.attributes, "missing").is_none()
        }),
        (
            r#"set(name, Concat([attributes["http.request.method"], attributes["http.route"]], " "))"#,
            |s| s.name == "GET /api/v1/orders/{id}",
        ),
        (
            r#"replace_all_patterns(attributes, "value", "shop\\.example\\.com", "redacted")"#,
            |s| attr(&s.attributes, "server.address") == Some(&s_("redacted")),
        ),
        (
            r#"replace_all_patterns(attributes, "key", "^http\\.", "h.")"#,
            |s| {
                attr(&s.attributes, "h.route").is_some()
                    && attr(&s.attributes, "http.route").is_none()
            },
        ),
        (r#"replace_all_matches(attributes, "shop.*", "x")"#, |s| {
            attr(&s.attributes, "server.address") == Some(&s_("x"))
        }),
        (r#"truncate_all(attributes, 4)"#, |s| {
            attr(&s.attributes, "http.route") == Some(&s_("/api"))
                && attr(&s.attributes, "cache.hit").is_some()
        }),
        (r#"limit(attributes, 2, ["cache.hit"])"#, |s| {
            s.attributes.len() == 2 && attr(&s.attributes, "cache.hit").is_some()
        }),
        (
            r#"set(attributes["n"], attributes["http.response.status_code"] * 2 + 1)"#,
            |s| attr(&s.attributes, "n") == Some(&Value::IntValue(401)),
        ),
        (
            r#"set(attributes["r"], attributes["sampled.ratio"] * 4)"#,
            |s| attr(&s.attributes, "r") == Some(&Value::DoubleValue(1.0)),
        ),
        (
            r#"set(attributes["svc"], resource.attributes["service.name"])"#,
            |s| matches!(attr(&s.attributes, "svc"), Some(Value::StringValue(v)) if !v.is_empty()),
        ),
        (
            r#"set(attributes["m"], ConvertCase(attributes["http.request.method"], "lower"))"#,
            |s| attr(&s.attributes, "m") == Some(&s_("get")),
        ),
        (
            r#"set(attributes["h"], SHA256("shop.example.com"))"#,
            |s| matches!(attr(&s.attributes, "h"), Some(Value::StringValue(h)) if h.starts_with("1f") || h.len() == 64),
        ),
        (
            r#"merge_maps(attributes, ParseJSON("{\"a\": 1, \"http.route\": \"x\"}"), "insert")"#,
            |s| {
                attr(&s.attributes, "a") == Some(&Value::IntValue(1))
                    && attr(&s.attributes, "http.route") == Some(&s_("/api/v1/orders/{id}"))
            },
        ),
        (
            r#"merge_maps(attributes, ParseJSON("{\"http.route\": \"x\"}"), "upsert")"#,
            |s| attr(&s.attributes, "http.route") == Some(&s_("x")),
        ),
        (
            r#"set(attributes["parts"], Len(Split(attributes["http.route"], "/")))"#,
            |s| attr(&s.attributes, "parts") == Some(&Value::IntValue(5)),
        ),
        (
            r#"set(attributes["is"], IsMatch(name, "^GET /api/products"))"#,
            |s| attr(&s.attributes, "is").is_some(),
        ),
        (
            r#"set(attributes["sub"], Substring(attributes["http.route"], 1, 3))"#,
            |s| attr(&s.attributes, "sub") == Some(&s_("api")),
        ),
        (
            r#"set(attributes["i"], Int("42")) where IsString(attributes["http.route"]) and not IsInt(attributes["http.route"])"#,
            |s| attr(&s.attributes, "i") == Some(&Value::IntValue(42)),
        ),
        (
            r#"set(attributes["tid"], trace_id.string)"#,
            |s| matches!(attr(&s.attributes, "tid"), Some(Value::StringValue(v)) if v.len() == 32),
        ),
        (r#"set(span.attributes["p"], "prefixed")"#, |s| {
            attr(&s.attributes, "p") == Some(&s_("prefixed"))
        }),
        (
            r#"set(status.code, STATUS_CODE_ERROR) where attributes["http.response.status_code"] >= 200"#,
            |s| s.status.as_ref().is_some_and(|st| st.code == 2),
        ),
        (
            r#"set(attributes["dur"], end_time_unix_nano - start_time_unix_nano) where end_time_unix_nano > start_time_unix_nano"#,
            |s| matches!(attr(&s.attributes, "dur"), Some(Value::IntValue(d)) if *d as u64 == s.end_time_unix_nano - s.start_time_unix_nano),
        ),
        (r#"set(attributes["x"], nil)"#, |s| {
            attr(&s.attributes, "x").is_none()
        }),
        (
            r#"set(attributes["a"], 1) where attributes["nope"] == nil"#,
            |s| attr(&s.attributes, "a") == Some(&Value::IntValue(1)),
        ),
        (
            r#"set(attributes["a"], 1) where attributes["http.route"] == 5"#,
            |s| attr(&s.attributes, "a").is_none(),
        ),
    ];
    for (stmt, check) in table {
        let yaml = format!(
            "trace_statements: [{}]",
            serde_json::to_string(stmt).unwrap()
        );
        let (out, rejected) = run(Signal::Traces, &config(&yaml), &spans());
        assert_eq!(rejected.count, 0, "{stmt}");
        for s in all_spans(&out) {
            assert!(check(s), "{stmt}: {s:?}");
        }
    }
}

fn s_(v: &str) -> Value {
    s(v)
}

#[test]
fn log_and_datapoint_statements() {
    let logs = Telemetry::Logs(testdata::logs(2, 2, 4));
    let cfg = config(
        r#"
log_statements:
  - context: log
    conditions: ['severity_number >= SEVERITY_NUMBER_WARN']
    statements:
      - set(severity_text, "WARNING")
      - set(attributes["b"], Substring(body, 0, 7))
  - 'set(log.body, Concat(["x", log.severity_text], ":")) where IsMatch(body, "finished")'
"#,
    );
    let (out, _) = run(Signal::Logs, &cfg, &logs);
    let Telemetry::Logs(r) = &out else { panic!() };
    for l in r
        .resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
    {
        let warn = l.severity_number >= 13;
        assert_eq!(l.severity_text == "WARNING", warn, "{l:?}");
        assert_eq!(attr(&l.attributes, "b") == Some(&s("request")), warn);
        assert_eq!(
            l.body.as_ref().and_then(|b| b.value.clone()),
            Some(s(&format!("x:{}", l.severity_text)))
        );
    }

    let metrics = Telemetry::Metrics(testdata::metrics(3, 1, 3));
    let cfg = config(
        r#"
metric_statements:
  - context: datapoint
    statements:
      - set(attributes["metric"], metric.name)
      - delete_key(attributes, "tier") where metric.name != "nope"
  - context: metric
    statements:
      - set(description, "described") where type == METRIC_DATA_TYPE_SUM
"#,
    );
    let (out, _) = run(Signal::Metrics, &cfg, &metrics);
    let Telemetry::Metrics(r) = &out else {
        panic!()
    };
    let mut sums = 0;
    for m in r
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
    {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        if let Some(Data::Sum(s)) = &m.data {
            sums += 1;
            assert_eq!(m.description, "described");
            for p in &s.data_points {
                assert_eq!(
                    attr(&p.attributes, "metric"),
                    Some(&Value::StringValue(m.name.clone()))
                );
                assert!(attr(&p.attributes, "tier").is_none());
            }
        }
    }
    assert!(sums > 0);
}

#[test]
fn failing_statements_follow_error_mode() {
    let bad = r#"set(attributes["n"], attributes["http.route"] * 2)"#;
    let reg = Registry::default();
    let cfg = config(&format!(
        "trace_statements: [{}]",
        serde_json::to_string(bad).unwrap()
    ));
    let p = cfg.build("transform/x", Signal::Traces, &reg);
    let mut t = spans();
    let mut rejected = Rejections::default();
    p.process(&mut t, &meta(), &mut rejected);
    assert_eq!(rejected.count, 0, "ignore keeps items");
    assert_eq!(all_spans(&t).len(), 8);
    assert_eq!(
        reg.sum(names::PROCESSOR_OTTL_ERRORS, "processor", "transform/x"),
        8
    );

    let cfg = config(&format!(
        "error_mode: propagate\ntrace_statements: [{}]",
        serde_json::to_string(bad).unwrap()
    ));
    let (out, rejected) = run(Signal::Traces, &cfg, &spans());
    assert_eq!(rejected.count, 8, "propagate refuses the failing items");
    assert!(all_spans(&out).is_empty());
}

#[test]
fn bad_statements_are_config_errors_with_path_and_column() {
    for (stmt, want) in [
        (
            "frobnicate(name)",
            "unknown function frobnicate (at column 1)",
        ),
        (
            "delete_index(attributes[\"l\"], 0)",
            "not implemented by otelgw yet",
        ),
        ("set(name)", "missing argument value"),
        (
            "replace_pattern(attributes, \"a\", \"b\")",
            "must be a string, not a map",
        ),
        (
            "replace_pattern(name, \"(\", \"x\")",
            "invalid regular expression",
        ),
        (
            "set(nme, \"x\")",
            "unknown path nme in the span context (at column 5)",
        ),
        ("Concat([\"a\"], \"\")", "expected an editor"),
        ("set(name, \"x\") where", "at column 21"),
        (
            "set(attributes[\"a\"], SPAN_KIND_SEVER)",
            "unknown enum SPAN_KIND_SEVER",
        ),
    ] {
        let yaml = format!(
            "trace_statements: [{}]",
            serde_json::to_string(stmt).unwrap()
        );
        let errs = errors(&yaml);
        assert!(
            errs.iter().any(|e| e.contains("processors.transform.trace_statements[0]") && e.contains(want)),
            "{stmt}: {errs:?}"
        );
    }
    // every problem at once, each with its own path
    let errs = errors("trace_statements: [{context: span, statements: ['set(a, 1)', 'nope()']}]\nlog_statements: [{context: span, statements: ['set(name, \"x\")']}]");
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs
        .iter()
        .any(|e| e.contains("trace_statements[0].statements[1]")));
    assert!(errs
        .iter()
        .any(|e| e.contains("log_statements[0]") && e.contains("does not apply")));
}

#[test]
fn context_inference_picks_the_most_specific_prefix() {
    assert_eq!(
        infer_context("set(span.name, \"x\")", Context::Span),
        Context::Span
    );
    assert_eq!(
        infer_context("set(resource.attributes[\"a\"], \"x\")", Context::Span),
        Context::Resource
    );
    assert_eq!(
        infer_context("set(attributes[\"resource.x\"], \"x\")", Context::Span),
        Context::Span
    );
    assert_eq!(
        infer_context(
            "set(datapoint.attributes[\"a\"], metric.name)",
            Context::DataPoint
        ),
        Context::DataPoint
    );
    assert_eq!(
        infer_context("set(metric.description, \"d\")", Context::DataPoint),
        Context::Metric
    );
}

#[test]
fn span_event_statements() {
    let cfg = config("trace_statements:\n  - context: spanevent\n    statements: ['set(attributes[\"seen\"], name)', 'set(name, \"renamed\") where name == \"retry\"']");
    let (out, _) = run(Signal::Traces, &cfg, &spans());
    let mut n = 0;
    for s in all_spans(&out) {
        for e in &s.events {
            n += 1;
            assert_eq!(e.name, "renamed");
            assert_eq!(attr(&e.attributes, "seen"), Some(&s_("retry")));
        }
    }
    assert!(n > 0);
}

/// The spanevent context reads the span around each event through `span.*` (read-only), and
/// the events stay on their span.
#[test]
fn span_event_statements_read_their_span() {
    let cfg = config("trace_statements:\n  - context: spanevent\n    statements: ['set(attributes[\"span\"], span.name) where span.kind == SPAN_KIND_SERVER', 'set(attributes[\"trace\"], span.trace_id.string)', 'set(attributes[\"route\"], span.attributes[\"http.route\"])']");
    let input = spans();
    let (out, _) = run(Signal::Traces, &cfg, &input);
    let mut n = 0;
    for (before, s) in all_spans(&input).iter().zip(all_spans(&out)) {
        assert_eq!(before.events.len(), s.events.len());
        for e in &s.events {
            n += 1;
            let want = (s.kind == 2).then(|| s_(&s.name));
            assert_eq!(attr(&e.attributes, "span").cloned(), want);
            let hex: String = s.trace_id.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(attr(&e.attributes, "trace"), Some(&s_(&hex)));
            assert_eq!(
                attr(&e.attributes, "route").cloned(),
                attr(&s.attributes, "http.route").cloned()
            );
        }
    }
    assert!(n > 0);
    // writing the span from an event is refused (counted by error_mode), not silently done
    let cfg = config("error_mode: ignore\ntrace_statements:\n  - context: spanevent\n    statements: ['set(span.name, \"x\")']");
    let (out, _) = run(Signal::Traces, &cfg, &input);
    for (before, s) in all_spans(&input).iter().zip(all_spans(&out)) {
        assert_eq!(before.name, s.name);
    }
}

#[test]
fn scope_and_resource_statements() {
    for signal in Signal::ALL {
        let key = match signal {
            Signal::Traces => "trace_statements",
            Signal::Metrics => "metric_statements",
            Signal::Logs => "log_statements",
        };
        let cfg = config(&format!(
            "{key}:\n  - context: scope\n    statements: ['set(name, \"renamed\")', 'set(attributes[\"a\"], 1)']\n  - 'set(resource.attributes[\"r\"], \"x\")'"
        ));
        let input = match signal {
            Signal::Traces => Telemetry::Traces(testdata::traces(1, 2, 2)),
            Signal::Metrics => Telemetry::Metrics(testdata::metrics(1, 2, 2)),
            Signal::Logs => Telemetry::Logs(testdata::logs(1, 2, 2)),
        };
        let (mut out, _) = run(signal, &cfg, &input);
        for r in out.resources_mut() {
            let r = r.as_ref().unwrap();
            assert_eq!(attr(&r.attributes, "r"), Some(&s("x")), "{signal:?}");
        }
        let scopes: Vec<_> = match &out {
            Telemetry::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|g| &g.scope_spans)
                .map(|s| s.scope.clone())
                .collect(),
            Telemetry::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|g| &g.scope_metrics)
                .map(|s| s.scope.clone())
                .collect(),
            Telemetry::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|g| &g.scope_logs)
                .map(|s| s.scope.clone())
                .collect(),
        };
        assert!(!scopes.is_empty());
        for sc in scopes {
            let sc = sc.unwrap();
            assert_eq!(sc.name, "renamed", "{signal:?}");
            assert_eq!(attr(&sc.attributes, "a"), Some(&Value::IntValue(1)));
        }
    }
}
