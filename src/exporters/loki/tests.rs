//! Loki exporter: wire bytes checked by hand against the schema, labels and limits table-driven.

use super::labels::TRUNCATED;
use super::*;
use crate::testdata::{kv, s};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AV;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

#[test]
fn entry_bytes_match_a_hand_encoding_of_the_schema() {
    let e = EntryAdapter {
        timestamp: Some(prost_types::Timestamp {
            seconds: 1,
            nanos: 2,
        }),
        line: "hi".into(),
        structured_metadata: vec![LabelPairAdapter {
            name: "a".into(),
            value: "b".into(),
        }],
    };
    // field 1 (LEN) Timestamp{1: 1, 2: 2}; field 2 (LEN) "hi"; field 3 (LEN) {1: "a", 2: "b"}
    let by_hand = vec![
        0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, //
        0x12, 0x02, b'h', b'i', //
        0x1a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b',
    ];
    assert_eq!(e.encode_to_vec(), by_hand);
    let push = PushRequest {
        streams: vec![StreamAdapter {
            labels: "{a=\"b\"}".into(),
            entries: vec![e],
        }],
    };
    // PushRequest{1: StreamAdapter{1: labels, 2: entry}}
    let mut stream = vec![0x0a, 7];
    stream.extend_from_slice(b"{a=\"b\"}");
    stream.push(0x12);
    stream.push(by_hand.len() as u8);
    stream.extend_from_slice(&by_hand);
    let mut want = vec![0x0a, stream.len() as u8];
    want.extend(stream);
    assert_eq!(push.encode_to_vec(), want);
}

fn exporter(yaml: &str) -> LokiExporter {
    let mut cfg: LokiConfig = serde_norway::from_str(yaml).unwrap();
    if cfg.endpoint.is_empty() {
        cfg.endpoint = "http://127.0.0.1:1/loki/api/v1/push".into();
    }
    let mut d = Diagnostics::default();
    cfg.validate("exporters.loki", &mut d);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    LokiExporter::new("loki", &cfg, &Registry::new(), None).unwrap()
}

fn record(sev: i32, body: AV, attrs: Vec<KeyValue>, ts: u64) -> LogRecord {
    LogRecord {
        time_unix_nano: ts,
        severity_number: sev,
        body: Some(AnyValue { value: Some(body) }),
        attributes: attrs,
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        ..Default::default()
    }
}

fn request(res: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: res,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "app.logger".into(),
                    ..Default::default()
                }),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn meta(e: &EntryAdapter, k: &str) -> Option<String> {
    e.structured_metadata
        .iter()
        .find(|p| p.name == k)
        .map(|p| p.value.clone())
}

#[test]
fn default_labels_level_and_structured_metadata() {
    let ex = exporter("{}");
    let req = request(
        vec![
            kv("service.name", s("shop")),
            kv("k8s.pod.name", s("shop-1")),
            kv("host.name", s("n1")),
        ],
        vec![
            record(17, s("boom"), vec![kv("user.id", s("u7"))], 20),
            record(9, s("ok"), vec![], 10),
        ],
    );
    let (pushes, dropped) = ex.build(&req);
    assert_eq!(dropped, 0);
    assert_eq!(pushes.len(), 1);
    let streams = &pushes[0].1.streams;
    assert_eq!(streams.len(), 2, "level splits streams");
    let err = streams
        .iter()
        .find(|s| s.labels.contains("level=\"error\""))
        .unwrap();
    assert_eq!(
        err.labels,
        "{k8s_pod_name=\"shop-1\", level=\"error\", service_name=\"shop\"}"
    );
    let e = &err.entries[0];
    assert_eq!(e.line, "boom");
    assert_eq!(
        meta(e, "trace_id").as_deref(),
        Some("abababababababababababababababab")
    );
    assert_eq!(meta(e, "span_id").as_deref(), Some("cdcdcdcdcdcdcdcd"));
    assert_eq!(meta(e, "severity_number").as_deref(), Some("17"));
    assert_eq!(meta(e, "scope_name").as_deref(), Some("app.logger"));
    assert_eq!(meta(e, "user_id").as_deref(), Some("u7"));
    assert_eq!(meta(e, "host_name").as_deref(), Some("n1"));
    // no service.name: unknown_service
    let (p, _) = ex.build(&request(vec![], vec![record(0, s("x"), vec![], 1)]));
    assert_eq!(
        p[0].1.streams[0].labels,
        "{level=\"unknown\", service_name=\"unknown_service\"}"
    );
}

#[test]
fn limits_labels_values_lines_and_order() {
    let many: String = (0..20).map(|i| format!("a{i}: l{i}\n")).collect();
    let ex = exporter(&format!("labels:\n  attributes:\n{}  static: {{cluster: eu1}}\nmax_line_size: 64\nmax_label_value_length: 40", many.lines().map(|l| format!("    {l}\n")).collect::<String>()));
    let attrs: Vec<KeyValue> = (0..20)
        .map(|i| kv(&format!("a{i}"), s(&format!("v{i}"))))
        .collect();
    let long_value = "x".repeat(100);
    let mut records = vec![
        record(9, s(&"y".repeat(100)), attrs.clone(), 30),
        record(9, s("early"), attrs.clone(), 10),
    ];
    records[0].attributes[0] = kv("a0", s(&long_value));
    let (p, _) = ex.build(&request(vec![kv("service.name", s("svc"))], records));
    let all_labels: usize = p[0]
        .1
        .streams
        .iter()
        .map(|s| parse_selector(&s.labels).unwrap().len())
        .max()
        .unwrap();
    assert_eq!(all_labels, 15, "max_labels");
    let st = &p[0].1.streams;
    for s in st {
        let l = parse_selector(&s.labels).unwrap();
        assert!(
            l.contains_key("service_name") && l.contains_key("level"),
            "kept first: {l:?}"
        );
        assert!(l.values().all(|v| v.len() <= 40), "{l:?}");
        for e in &s.entries {
            assert!(e.line.len() <= 64);
        }
    }
    let with_long = st
        .iter()
        .find(|s| s.labels.contains(TRUNCATED))
        .expect("a truncated label value");
    assert!(with_long.entries[0].line.ends_with(TRUNCATED));
    // demoted labels are kept as structured metadata
    let e = &with_long.entries[0];
    assert!(
        e.structured_metadata.len() >= 6,
        "{:?}",
        e.structured_metadata
    );
    // entries sorted by timestamp within a stream
    let plain = st
        .iter()
        .find(|s| s.entries.len() == 1 && s.entries[0].line == "early")
        .unwrap();
    assert_eq!(plain.entries[0].timestamp.as_ref().unwrap().nanos, 10);

    let drop = exporter("max_line_size: 8\nline_too_long: drop");
    let (p, dropped) = drop.build(&request(
        vec![],
        vec![
            record(9, s("this is too long"), vec![], 1),
            record(9, s("short"), vec![], 2),
        ],
    ));
    assert_eq!(dropped, 1);
    assert_eq!(p[0].1.streams[0].entries.len(), 1);
}

#[test]
fn formats_put_fields_in_the_line() {
    let body_map = AV::KvlistValue(KeyValueList {
        values: vec![kv("k", s("v"))],
    });
    let lf = exporter("format: logfmt");
    let (p, _) = lf.build(&request(
        vec![],
        vec![record(9, s("hello"), vec![kv("path", s("/a b"))], 1)],
    ));
    let e = &p[0].1.streams[0].entries[0];
    assert!(e.structured_metadata.is_empty());
    assert!(e.line.starts_with("hello "), "{}", e.line);
    assert!(e.line.contains("path=\"/a b\""), "{}", e.line);
    assert!(
        e.line.contains("trace_id=abababababababababababababababab"),
        "{}",
        e.line
    );
    let js = exporter("format: json");
    let (p, _) = js.build(&request(
        vec![],
        vec![record(9, body_map.clone(), vec![], 1)],
    ));
    let v: serde_json::Value = serde_json::from_str(&p[0].1.streams[0].entries[0].line).unwrap();
    assert_eq!(v["body"]["k"], "v");
    assert_eq!(v["span_id"], "cdcdcdcdcdcdcdcd");
    // map bodies are JSON in the default format too
    let (p, _) = exporter("{}").build(&request(vec![], vec![record(9, body_map, vec![], 1)]));
    assert_eq!(p[0].1.streams[0].entries[0].line, "{\"k\":\"v\"}");
}

#[test]
fn tenants_stream_caps_and_request_size() {
    let ex = exporter(
        "tenant_from_attribute: tenant\nmax_streams_per_request: 2\nmax_active_streams: 3",
    );
    let mut req = request(
        vec![kv("tenant", s("a"))],
        (0..3).map(|i| record(9, s("x"), vec![], i)).collect(),
    );
    req.resource_logs.push(
        request(
            vec![kv("tenant", s("b")), kv("service.name", s("other"))],
            vec![record(9, s("y"), vec![], 1)],
        )
        .resource_logs
        .remove(0),
    );
    for (i, r) in req.resource_logs[0].scope_logs[0]
        .log_records
        .iter_mut()
        .enumerate()
    {
        r.severity_number = [1, 5, 9][i];
    }
    let (p, dropped) = ex.build(&req);
    let tenants: Vec<_> = p.iter().map(|(t, _)| t.clone().unwrap()).collect();
    assert_eq!(
        tenants,
        vec!["a", "a"],
        "3 streams of tenant a in 2 requests; b is past the stream cap"
    );
    assert_eq!(p[0].1.streams.len(), 2);
    assert_eq!(dropped, 1, "the 4th stream was dropped and counted");
    assert!(p
        .iter()
        .all(|(_, push)| push.streams.iter().all(|s| !s.labels.contains("tenant"))));
}

#[test]
fn json_encoding_has_loki_s_documented_shape() {
    let (p, _) = exporter("encoding: json").build(&request(
        vec![kv("service.name", s("shop"))],
        vec![record(13, s("careful"), vec![], 1_700_000_000_123_456_789)],
    ));
    let v = push_json(&p[0].1);
    assert_eq!(
        v,
        serde_json::json!({"streams": [{
            "stream": {"level": "warn", "service_name": "shop"},
            "values": [["1700000000123456789", "careful", {
                "trace_id": "abababababababababababababababab",
                "span_id": "cdcdcdcdcdcdcdcd",
                "severity_number": "13",
                "scope_name": "app.logger"
            }]]
        }]})
    );
}

#[test]
fn selectors_escape_and_parse_back() {
    let mut l = BTreeMap::new();
    l.insert("a".to_string(), "q\"uo\\te\nnl".to_string());
    l.insert("b".to_string(), "plain".to_string());
    let sel = selector(&l);
    assert_eq!(sel, "{a=\"q\\\"uo\\\\te\\nnl\", b=\"plain\"}");
    assert_eq!(parse_selector(&sel).unwrap(), l);
}

#[test]
fn config_rejects_bad_label_names() {
    let cfg: LokiConfig = serde_norway::from_str("endpoint: http://loki:3100/loki/api/v1/push\nlabels: {attributes: {user.id: 'user.id'}, static: {'9x': y}}").unwrap();
    let mut d = Diagnostics::default();
    cfg.validate("exporters.loki", &mut d);
    let paths: Vec<_> = d.errors.iter().map(|e| e.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            "exporters.loki.labels.attributes.user.id",
            "exporters.loki.labels.static.9x"
        ]
    );
}
