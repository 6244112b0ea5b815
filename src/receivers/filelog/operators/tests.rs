#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::component::Diagnostics;
use serde_json::json;

const NOW: u64 = 1_700_000_000_000_000_000; // 2023-11-14T22:13:20Z

fn ops(yaml: &str) -> Operators {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    let mut d = Diagnostics::default();
    let cfg = OperatorsConfig::parse("ops", &v, &mut d);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    cfg.build().unwrap()
}

fn errors(yaml: &str) -> Vec<(String, String)> {
    let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    let mut d = Diagnostics::default();
    OperatorsConfig::parse("receivers.filelog.operators", &v, &mut d);
    d.errors.into_iter().map(|i| (i.path, i.message)).collect()
}

fn line(s: &str) -> Entry {
    Entry {
        body: json!(s),
        ..Default::default()
    }
}

fn line_at(s: &str, path: &str) -> Entry {
    let mut e = line(s);
    e.attributes.insert("log.file.path".into(), json!(path));
    e
}

fn run(o: &mut Operators, e: Entry) -> Vec<Entry> {
    let mut out = Vec::new();
    o.process(e, NOW, &mut out);
    out
}

const POD: &str = "/var/log/pods/default_web-1_0123456789abcdef0123456789abcdef/nginx/0.log";

#[test]
fn docker_line_with_k8s_metadata() {
    let mut o = ops("- type: container");
    let out = run(
        &mut o,
        line_at(
            r#"{"log":"GET / 200\n","stream":"stderr","time":"2024-03-30T08:31:20.545192187Z"}"#,
            POD,
        ),
    );
    assert_eq!(out.len(), 1);
    let e = &out[0];
    assert_eq!(e.body, json!("GET / 200"));
    assert_eq!(e.attributes["log.iostream"], json!("stderr"));
    assert!(!e.attributes.contains_key("time") && !e.attributes.contains_key("log"));
    assert_eq!(e.timestamp, Some(1_711_787_480_545_192_187));
    assert_eq!(e.resource["k8s.namespace.name"], json!("default"));
    assert_eq!(e.resource["k8s.pod.name"], json!("web-1"));
    assert_eq!(
        e.resource["k8s.pod.uid"],
        json!("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(e.resource["k8s.container.name"], json!("nginx"));
    assert_eq!(e.resource["k8s.container.restart_count"], json!("0"));
    assert_eq!(o.errors(), 0);
}

#[test]
fn docker_lines_are_entries_of_their_own() {
    // as the Collector: only CRI `P` partials are joined; a docker line without its `\n`
    // is not held back
    let mut o = ops("- type: container\n  format: docker");
    let t = r#""stream":"stdout","time":"2024-03-30T08:31:20Z""#;
    let first = run(
        &mut o,
        line_at(&format!(r#"{{"log":"part one, ",{t}}}"#), POD),
    );
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].body, json!("part one, "));
    let out = run(
        &mut o,
        line_at(&format!(r#"{{"log":"part two\n",{t}}}"#), POD),
    );
    assert_eq!(out[0].body, json!("part two"));
}

#[test]
fn cri_partial_lines_recombined_per_file() {
    let mut o = ops("- type: container");
    let other = "/var/log/pods/kube-system_dns-0_aaaabbbbccccdddd/coredns/2.log";
    assert!(run(
        &mut o,
        line_at(
            "2023-06-22T10:27:25.813799277Z stdout P multiline containerd line that i",
            POD
        )
    )
    .is_empty());
    // A complete line from another file passes straight through.
    let other_out = run(
        &mut o,
        line_at(
            "2024-04-13T07:59:37.505201169-05:00 stderr F crio line",
            other,
        ),
    );
    assert_eq!(other_out[0].body, json!("crio line"));
    assert_eq!(other_out[0].timestamp, Some(1_713_013_177_505_201_169));
    assert_eq!(other_out[0].attributes["logtag"], json!("F"));
    assert_eq!(
        other_out[0].resource["k8s.container.restart_count"],
        json!("2")
    );
    assert!(run(
        &mut o,
        line_at("2023-06-22T10:27:25.813799277Z stdout P s super ", POD)
    )
    .is_empty());
    let out = run(
        &mut o,
        line_at("2023-06-22T10:27:25.813799277Z stdout F awesome", POD),
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].body,
        json!("multiline containerd line that is super awesome")
    );
    assert_eq!(out[0].attributes["log.iostream"], json!("stdout"));
}

#[test]
fn cri_partial_flushed_by_flush_all() {
    let mut o = ops("- type: container");
    assert!(run(
        &mut o,
        line_at("2023-06-22T10:27:25Z stdout P dangling", POD)
    )
    .is_empty());
    let mut out = Vec::new();
    o.flush(NOW, false, &mut out);
    assert!(out.is_empty(), "not yet due");
    o.flush(NOW + 6_000_000_000, false, &mut out);
    assert_eq!(out[0].body, json!("dangling"));
}

#[test]
fn container_without_path_counts_error_but_parses() {
    let mut o = ops("- type: container");
    let out = run(
        &mut o,
        line(r#"{"log":"x\n","stream":"stdout","time":"2024-03-30T08:31:20Z"}"#),
    );
    assert_eq!(out[0].body, json!("x"));
    assert_eq!(o.errors(), 1);
    let mut o = ops("- type: container\n  add_metadata_from_filepath: false");
    run(
        &mut o,
        line(r#"{"log":"x\n","stream":"stdout","time":"2024-03-30T08:31:20Z"}"#),
    );
    assert_eq!(o.errors(), 0);
}

#[test]
fn regex_with_timestamp_and_severity() {
    let mut o = ops(r#"
- type: regex_parser
  regex: '^(?P<ip>\S+) - - \[(?P<time>[^\]]+)\] "(?P<method>\w+) (?P<path>\S+)[^"]*" (?P<status>\d{3})'
  timestamp:
    parse_from: attributes.time
    layout: '%d/%b/%Y:%H:%M:%S %z'
  severity:
    parse_from: attributes.status
    mapping:
      info: 2xx
      warn: 4xx
      error: 5xx
"#);
    let out = run(
        &mut o,
        line(r#"10.0.0.1 - - [10/Oct/2023:13:55:36 -0700] "GET /a HTTP/1.1" 503 12"#),
    );
    let e = &out[0];
    assert_eq!(e.attributes["method"], json!("GET"));
    assert_eq!(e.attributes["path"], json!("/a"));
    assert_eq!(e.timestamp, Some(1_696_971_336_000_000_000));
    assert_eq!(e.severity, 17);
    assert_eq!(e.severity_text, "503");
    // Unmatched line: sent on unchanged, counted.
    let out = run(&mut o, line("garbage"));
    assert_eq!(out, vec![line("garbage")]);
    assert_eq!((o.errors(), o.dropped()), (1, 0));
}

#[test]
fn json_parser_invalid_json_and_on_error_drop() {
    let mut send = ops("- type: json_parser");
    let out = run(&mut send, line("{not json"));
    assert_eq!(out, vec![line("{not json")]);
    assert_eq!((send.errors(), send.dropped()), (1, 0));

    let mut drop = ops("- type: json_parser\n  on_error: drop\n  parse_to: body");
    assert!(run(&mut drop, line("{not json")).is_empty());
    assert_eq!((drop.errors(), drop.dropped()), (1, 1));
    let out = run(&mut drop, line(r#"{"a":{"b":1},"msg":"hi"}"#));
    // numbers are doubles unless parse_ints (the Collector's default)
    assert_eq!(out[0].body, json!({"a":{"b":1.0},"msg":"hi"}));
    let mut ints = ops("- type: json_parser\n  parse_ints: true");
    let out = run(&mut ints, line(r#"{"n":[1,2.5],"m":{"k":3}}"#));
    assert_eq!(out[0].attributes["n"], json!([1, 2.5]));
    assert_eq!(out[0].attributes["m"], json!({"k": 3}));
    assert!(out[0].attributes["m"]["k"].is_i64());
}

#[test]
fn json_then_move_copy_add_remove_flatten_retain() {
    let mut o = ops(r#"
- type: json_parser
  parse_to: body
- type: move
  from: body.msg
  to: attributes["log.message"]
- type: copy
  from: body.user.id
  to: resource.user
- type: add
  field: attributes.env
  value: prod
- type: add
  id: add_greeting
  field: attributes.greeting
  value: EXPR("user-" + body.user.name)
- type: flatten
  field: body.user
- type: remove
  field: body.junk
- type: retain
  fields: [body.id, attributes.env, attributes.greeting, 'attributes["log.message"]']
"#);
    let out = run(
        &mut o,
        line(r#"{"msg":"hello","user":{"id":7,"name":"ann"},"junk":1}"#),
    );
    let e = &out[0];
    assert_eq!(o.errors(), 0);
    assert_eq!(e.body, json!({"id": 7.0}));
    assert_eq!(e.resource["user"], json!(7.0));
    assert_eq!(
        serde_json::Value::Object(e.attributes.clone()),
        json!({"env":"prod","greeting":"user-ann","log.message":"hello"})
    );
}

#[test]
fn router_two_routes_and_default() {
    let yaml = r#"
- type: router
  routes:
    - expr: 'body matches "^\\{"'
      output: json
      attributes: {format: json}
    - expr: body startsWith "key=" or body contains " key="
      output: kv
  default: tag
- id: json
  type: json_parser
  output: end
- id: kv
  type: key_value_parser
  output: end
- id: tag
  type: add
  field: attributes.unparsed
  value: true
- id: end
  type: noop
"#;
    let mut o = ops(yaml);
    let j = run(&mut o, line(r#"{"a":"b"}"#));
    assert_eq!(j[0].attributes["a"], json!("b"));
    assert_eq!(j[0].attributes["format"], json!("json"));
    let kv = run(&mut o, line(r#"key=v other="two words""#));
    assert_eq!(kv[0].attributes["other"], json!("two words"));
    assert!(!kv[0].attributes.contains_key("unparsed"));
    let d = run(&mut o, line("plain"));
    assert_eq!(d[0].attributes["unparsed"], json!(true));

    let mut no_default = ops("- type: router\n  routes:\n    - expr: body == 'x'\n      output: n\n- {id: n, type: noop}");
    assert!(run(&mut no_default, line("y")).is_empty());
    assert_eq!(no_default.dropped(), 1);
    assert_eq!(run(&mut no_default, line("x")).len(), 1);
}

#[test]
fn recombine_java_stack_trace() {
    let mut o = ops(
        "- type: recombine\n  combine_field: body\n  is_first_entry: body matches \"^[^\\\\s]\"",
    );
    let lines = [
        "Log message 1",
        "Error: java.lang.Exception: Stack trace",
        "        at java.lang.Thread.dumpStack(Thread.java:1336)",
        "        at Main.main(Main.java:3)",
        "Another log message",
    ];
    let mut out = Vec::new();
    for l in lines {
        o.process(line_at(l, "/a.log"), NOW, &mut out);
    }
    let bodies: Vec<_> = out.iter().map(|e| e.body.clone()).collect();
    assert_eq!(
        bodies,
        vec![
            json!("Log message 1"),
            json!("Error: java.lang.Exception: Stack trace\n        at java.lang.Thread.dumpStack(Thread.java:1336)\n        at Main.main(Main.java:3)")
        ]
    );
    o.flush(NOW, true, &mut out);
    assert_eq!(out.last().unwrap().body, json!("Another log message"));
}

#[test]
fn recombine_is_last_entry_and_force_flush() {
    let mut o = ops(
        "- type: recombine\n  is_last_entry: body endsWith '.'\n  combine_with: ' '\n  force_flush_period: 1s\n  overwrite_with: newest",
    );
    let mut out = Vec::new();
    let mut first = line("a");
    first.severity = 9;
    o.process(first, NOW, &mut out);
    o.process(line("b."), NOW, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, json!("a b."));
    assert_eq!(out[0].severity, 0, "newest entry's fields");
    o.process(line("c"), NOW, &mut out);
    o.flush(NOW + 500_000_000, false, &mut out);
    assert_eq!(out.len(), 1);
    o.flush(NOW + 1_000_000_000, false, &mut out);
    assert_eq!(out[1].body, json!("c"));
}

#[test]
fn time_parser_layouts() {
    let cases = [
        (
            "layout: '%Y-%m-%dT%H:%M:%S.%L%z'",
            json!("2024-01-02T03:04:05.123+0100"),
            1_704_161_045_123_000_000u64,
        ),
        (
            "layout: '%Y-%m-%d %H:%M:%S,%f'\n  location: UTC",
            json!("2024-01-02 03:04:05,123456"),
            1_704_164_645_123_456_000,
        ),
        (
            "layout: '%a %b %e %H:%M:%S %Z %Y'",
            json!("Fri Jun  5 13:50:27 EST 2020"),
            1_591_383_027_000_000_000,
        ),
        (
            "layout: '%F %T'\n  location: UTC",
            json!("2024-01-02 03:04:05.5"),
            1_704_164_645_500_000_000,
        ),
        (
            "layout_type: gotime\n  layout: '2006-01-02T15:04:05.999999999Z07:00'",
            json!("2024-01-02T03:04:05.1Z"),
            1_704_164_645_100_000_000,
        ),
        (
            "layout_type: gotime\n  layout: 'Jan _2 15:04:05'\n  location: UTC",
            json!("Nov  4 10:00:00"),
            1_699_092_000_000_000_000,
        ),
        (
            "layout: '%d %B %Y'\n  location: UTC",
            json!("05 May 2024"),
            1_714_867_200_000_000_000,
        ),
        (
            "layout_type: epoch\n  layout: s",
            json!(1_136_214_245),
            1_136_214_245_000_000_000,
        ),
        (
            "layout_type: epoch\n  layout: ms",
            json!("1136214245123"),
            1_136_214_245_123_000_000,
        ),
        (
            "layout_type: epoch\n  layout: s.ns",
            json!("1136214245.123456789"),
            1_136_214_245_123_456_789,
        ),
        (
            "layout_type: epoch\n  layout: s.ms",
            json!(1136214245.5),
            1_136_214_245_500_000_000,
        ),
    ];
    for (cfg, value, want) in cases {
        let mut o = ops(&format!(
            "- type: time_parser\n  parse_from: body.t\n  {cfg}"
        ));
        let out = run(
            &mut o,
            Entry {
                body: json!({ "t": value }),
                ..Default::default()
            },
        );
        assert_eq!(out[0].timestamp, Some(want), "{cfg} {value}");
        assert_eq!(o.errors(), 0);
    }
    let mut o = ops("- type: time_parser\n  layout: '%Y-%m-%d'\n  on_error: drop_quiet");
    assert!(run(&mut o, line("02/01/2024")).is_empty());
    assert_eq!(o.dropped(), 1);
}

#[test]
fn severity_presets_and_overwrite() {
    let mut o = ops("- type: severity_parser\n  parse_from: attributes.lvl\n  overwrite_text: true\n  mapping:\n    fatal: [panic, {min: 900, max: 901}]\n    info3: medium");
    let sev = |o: &mut Operators, v: serde_json::Value| {
        let mut e = line("");
        e.attributes.insert("lvl".into(), v);
        let out = run(o, e);
        (out[0].severity, out[0].severity_text.clone())
    };
    assert_eq!(sev(&mut o, json!("WARNING")), (13, "WARN".into()));
    assert_eq!(sev(&mut o, json!("err")), (17, "ERROR".into()));
    assert_eq!(sev(&mut o, json!("Panic")), (21, "FATAL".into()));
    assert_eq!(sev(&mut o, json!(901)), (21, "FATAL".into()));
    assert_eq!(sev(&mut o, json!("medium")), (11, "INFO3".into()));
    assert_eq!(sev(&mut o, json!("chatty")), (0, "chatty".into()));
    let mut none = ops("- type: severity_parser\n  parse_from: attributes.lvl\n  preset: none");
    assert_eq!(sev(&mut none, json!("error")), (0, "error".into()));
}

#[test]
fn trace_and_kv_parsers() {
    let mut o = ops("- type: key_value_parser\n  pair_delimiter: ';'\n- type: trace_parser");
    let out = run(
        &mut o,
        line("trace_id=0102030405060708090a0b0c0d0e0f10; span_id=a1a2a3a4a5a6a7a8;trace_flags=01"),
    );
    assert_eq!(out[0].trace_id, (1..=16).collect::<Vec<u8>>());
    assert_eq!(
        out[0].span_id,
        vec![0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]
    );
    assert_eq!(out[0].trace_flags, 1);
    let out = run(&mut o, line("trace_id=abc"));
    assert!(out[0].trace_id.is_empty());
    assert_eq!(o.errors(), 1);
}

#[test]
fn if_condition_skips_operator() {
    let mut o = ops("- type: json_parser\n  if: 'body startsWith \"{\" && env(\"OTELGW_OPS_TEST_UNSET\") == nil'");
    let out = run(&mut o, line("plain"));
    assert_eq!(out, vec![line("plain")]);
    assert_eq!(o.errors(), 0);
    assert_eq!(
        run(&mut o, line(r#"{"k":1}"#))[0].attributes["k"],
        json!(1.0)
    );
}

#[test]
fn expressions() {
    let mut e = line("hello world");
    e.attributes.insert("log.file.path".into(), json!("/x.log"));
    e.attributes.insert("n".into(), json!(5));
    let t = |src: &str| expr::Expr::compile(src).unwrap().eval_bool(&e);
    assert!(t(r#"attributes["log.file.path"] endsWith ".log""#));
    assert!(t(
        "attributes.n >= 5 and attributes.n < 6 and not (attributes.n == 4)"
    ));
    assert!(t(r#"$body contains "world" || false"#));
    assert!(t(r#"attributes.n in [1, 5]"#));
    assert!(t(r#""n" in attributes"#));
    assert!(t("attributes.missing == nil"));
    assert!(!t("attributes.missing > 1"));
    assert!(!t("attributes.missing != nil"));
    assert!(t(r#"attributes.n + 1 == 6 && "a" + "b" == "ab""#));
    assert!(t(r#"body not matches "^x""#));
    for bad in [
        "body ?? 1",
        "len(body)",
        "body ==",
        "body matches attributes.n",
        "(body",
    ] {
        assert!(expr::Expr::compile(bad).is_err(), "{bad}");
    }
}

#[test]
fn fields_parse_and_set() {
    let f = field::Field::parse(r#"attributes["k.with.dots"].inner"#).unwrap();
    let mut e = Entry::default();
    f.set(&mut e, json!(1)).unwrap();
    assert_eq!(e.attributes["k.with.dots"], json!({"inner": 1}));
    assert_eq!(f.to_string(), r#"attributes["k.with.dots"].inner"#);
    assert_eq!(f.delete(&mut e), Some(json!(1)));
    assert!(field::Field::parse("message").is_err());
    assert!(field::Field::parse("body[unquoted]").is_err());
    assert!(field::Field::parse("$resource.host").is_ok());
}

#[test]
fn config_errors_are_all_reported_with_paths() {
    let errs = errors(
        r#"
- type: foo_parser
- type: json_parser
  bogus: 1
- type: regex_parser
  regex: '(?P<a>['
- type: move
  from: body.a
  to: attributes.a
  output: nowhere
- id: dup
  type: noop
- id: dup
  type: noop
- type: add
  field: attributes.x
  value: EXPR(body ??)
- type: recombine
  is_first_entry: body == 'a'
  is_last_entry: body == 'b'
- type: json_parser
  id: j2
  scope_name: {parse_from: body.x}
  timestamp: {parse_from: body.t, layout: '%Q'}
- type: time_parser
  layout: '%Y'
  location: America/New_York
"#,
    );
    let has = |path: &str, word: &str| {
        errs.iter()
            .any(|(p, m)| p == &format!("receivers.filelog.operators{path}") && m.contains(word))
    };
    assert!(has("[0].type", "unknown operator type"), "{errs:#?}");
    assert!(has("[1].bogus", "unknown key"), "{errs:#?}");
    assert!(has("[2].regex", "invalid regex"), "{errs:#?}");
    assert!(has("[3].output", "names no operator"), "{errs:#?}");
    assert!(has("[5].id", "duplicate"), "{errs:#?}");
    assert!(has("[6].value", "expression"), "{errs:#?}");
    assert!(has("[7].is_first_entry", "exactly one"), "{errs:#?}");
    assert!(has("[8].scope_name", "not supported"), "{errs:#?}");
    assert!(has("[8].timestamp.layout", "%Q"), "{errs:#?}");
    assert!(has("[9].location", "not supported"), "{errs:#?}");
    assert_eq!(errs.len(), 10, "{errs:#?}");
}

#[test]
fn cycles_are_rejected_and_empty_config_is_empty() {
    let errs = errors("- {id: a, type: noop, output: b}\n- {id: b, type: noop, output: a}");
    assert!(errs.iter().any(|(_, m)| m.contains("cycle")), "{errs:?}");
    let mut d = Diagnostics::default();
    let cfg = OperatorsConfig::parse("p", &serde_norway::Value::Null, &mut d);
    assert!(cfg.is_empty() && d.errors.is_empty());
    let mut o = cfg.build().unwrap();
    assert_eq!(run(&mut o, line("x")), vec![line("x")]);
}

#[test]
fn to_value_round_trips() {
    let v: serde_norway::Value =
        serde_norway::from_str("- type: json_parser\n  parse_to: body\n").unwrap();
    let mut d = Diagnostics::default();
    let cfg = OperatorsConfig::parse("p", &v, &mut d);
    assert_eq!(cfg.to_value(), v);
}

#[test]
fn go_string_escapes_only() {
    // "\d" is not a Go string escape: an error, not silently the regex `d`
    let e = errors("- type: router\n  routes:\n    - expr: 'body matches \"^\\d+\"'\n      output: n\n- {id: n, type: noop}");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].0.contains("routes[0]"), "{e:?}");
    assert!(e[0].1.contains("invalid escape"), "{e:?}");
    let mut o = ops("- type: router\n  routes:\n    - expr: 'body matches \"^\\\\d+ \\\"q\\\"\"'\n      output: n\n- {id: n, type: add, field: attributes.hit, value: true}");
    assert_eq!(
        run(&mut o, line("12 \"q\""))[0].attributes["hit"],
        json!(true)
    );
    assert_eq!(o.dropped(), 0);
    assert!(run(&mut o, line("x 12")).is_empty());
}

#[test]
fn hostile_expressions_are_config_errors_not_stack_overflows() {
    let deep = format!("{}body == 'x'{}", "(".repeat(10_000), ")".repeat(10_000));
    let long = vec!["body == 'x'"; 2000].join(" or ");
    for expr in [deep, long] {
        let yaml = format!("- type: add\n  field: attributes.x\n  value: 1\n  if: \"{expr}\"");
        let e = errors(&yaml);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].0.ends_with("operators[0].if"), "{e:?}");
    }
    // ordinary nesting is fine
    ops("- type: add\n  field: attributes.x\n  value: 1\n  if: \"((body == 'a') or (not (body == 'b')))\"");
}
