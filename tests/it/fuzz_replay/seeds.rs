//! The generated seed corpus: a handful of valid and tricky inputs per target, from real
//! encodings of otelgw's test data and hand-made edge cases. Small on purpose (libFuzzer grows
//! its own corpus from these).

use std::io::Write;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue};
use otelgw::data::Telemetry;
use otelgw::testdata;
use prost::Message;

type Files = Vec<(&'static str, Vec<u8>)>;

pub fn all() -> Vec<(&'static str, Files)> {
    vec![
        ("wire_scan", wire_scan()),
        ("json_decode", json_decode()),
        ("decompress", decompress()),
        ("config_load", config_load()),
        ("resource_edit", resource_edit()),
        ("loki_labels", loki_labels()),
        ("prometheus_names", prometheus_names()),
        ("item_edit", item_edit()),
        ("ottl_compile", ottl_compile()),
        ("prometheus_exposition", prometheus_exposition()),
        ("prometheus_relabel", prometheus_relabel()),
    ]
}

fn requests() -> [(&'static str, u8, Telemetry); 3] {
    [
        ("traces", 0, Telemetry::Traces(testdata::traces(1, 1, 1))),
        ("metrics", 1, Telemetry::Metrics(testdata::metrics(1, 1, 1))),
        ("logs", 2, Telemetry::Logs(testdata::logs(1, 1, 1))),
    ]
}

/// An AnyValue nested `depth` arrays deep.
fn nested(depth: usize) -> AnyValue {
    let mut v = AnyValue {
        value: Some(any_value::Value::IntValue(1)),
    };
    for _ in 0..depth {
        v = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
        };
    }
    v
}

/// Protobuf inputs: the three requests, one truncated, one with a zero trace id, unknown
/// fields and a group, invalid UTF-8 in a string, nesting at prost's recursion limit.
fn protobufs() -> Vec<(&'static str, u8, Vec<u8>)> {
    let mut out: Vec<(&'static str, u8, Vec<u8>)> = requests()
        .into_iter()
        .map(|(n, s, t)| (n, s, t.encode_to_bytes().to_vec()))
        .collect();
    let traces = out[0].2.clone();
    out.push(("traces-truncated", 0, traces[..traces.len() - 3].to_vec()));
    let mut t = testdata::traces(2, 1, 1);
    t.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![0; 16];
    out.push(("traces-zero-trace-id", 0, t.encode_to_vec()));
    let mut unknown = traces.clone();
    // field 99 varint, field 100 group with a nested varint, then a fixed32 field 101
    unknown.extend_from_slice(&[0x98, 0x06, 0x07, 0xa3, 0x06, 0x08, 0x01, 0xa4, 0x06]);
    unknown.extend_from_slice(&[0xad, 0x06, 1, 2, 3, 4]);
    out.push(("traces-unknown-fields", 0, unknown));
    // ResourceLogs { resource { attributes { key: "\xff" } } }
    out.push((
        "logs-bad-utf8",
        2,
        vec![0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff],
    ));
    for (name, depth) in [("logs-depth-ok", 44), ("logs-depth-over", 50)] {
        let mut l = testdata::logs(3, 1, 1);
        l.resource_logs[0].scope_logs[0].log_records[0].body = Some(nested(depth));
        out.push((name, 2, l.encode_to_vec()));
    }
    out
}

fn wire_scan() -> Files {
    protobufs().into_iter().map(|(n, _, b)| (n, b)).collect()
}

fn resource_edit() -> Files {
    let mut out: Files = protobufs()
        .into_iter()
        .map(|(n, s, b)| (n, [vec![s], b].concat()))
        .collect();
    // a metrics request without a resource, and one whose resource comes in two pieces
    let mut m = testdata::metrics(4, 1, 1);
    m.resource_metrics[0].resource = None;
    out.push(("metrics-no-resource", [vec![1], m.encode_to_vec()].concat()));
    let t = testdata::traces(5, 1, 1);
    let g = &t.resource_spans[0];
    let res = g.resource.clone().unwrap();
    let mut group = Vec::new();
    for s in &g.scope_spans {
        prost::encoding::message::encode(2, s, &mut group);
    }
    for half in res.attributes.chunks(2) {
        let part = opentelemetry_proto::tonic::resource::v1::Resource {
            attributes: half.to_vec(),
            ..Default::default()
        };
        prost::encoding::message::encode(1, &part, &mut group);
    }
    let mut req = Vec::new();
    prost::encoding::bytes::encode(1, &group, &mut req);
    out.push(("traces-split-resource", [vec![0], req].concat()));
    out
}

fn json_decode() -> Files {
    let mut out: Files = requests()
        .into_iter()
        .map(|(n, _, t)| (n, t.to_json().unwrap()))
        .collect();
    let hand: [(&'static str, &str); 7] = [
        ("empty-object", "{}"),
        ("null-groups", r#"{"resourceSpans":null,"resourceLogs":[]}"#),
        (
            "bad-hex-id",
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708"}]}]}]}"#,
        ),
        (
            "int-as-string-and-number",
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","body":{"intValue":"12"},"attributes":[{"key":"n","value":{"intValue":7}}]}]}]}]}"#,
        ),
        (
            "double-special",
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"asDouble":"NaN"},{"asDouble":"Infinity"},{"asDouble":1e308}]}}]}]}]}"#,
        ),
        (
            "kvlist-and-bytes",
            r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"k","value":{"kvlistValue":{"values":[{"key":"b","value":{"bytesValue":"AAEC"}}]}}}]}}]}"#,
        ),
        (
            "unknown-and-duplicate-keys",
            r#"{"resourceSpans":[],"resourceSpans":[{}],"extra":{"x":[1,2,{}]}}"#,
        ),
    ];
    out.extend(hand.map(|(n, j)| (n, j.as_bytes().to_vec())));
    let mut deep = String::from(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"#);
    for _ in 0..40 {
        deep.push_str(r#"{"arrayValue":{"values":["#);
    }
    deep.push_str(r#"{"intValue":"1"}"#);
    for _ in 0..40 {
        deep.push_str("]}}");
    }
    deep.push_str("}]}]}]}");
    out.push(("deep-arrays", deep.into_bytes()));
    out
}

fn decompress() -> Files {
    // input: encoding index (identity, gzip, zstd, deflate, snappy; +5 picks the other deflate
    // wrapping / snappy format in the round trip), cap / 16 as u16 LE, body
    let input = |enc: u8, cap: usize, body: &[u8]| {
        let c = u16::try_from(cap / 16).unwrap().to_le_bytes();
        [&[enc, c[0], c[1]][..], body].concat()
    };
    let proto = Telemetry::Logs(testdata::logs(6, 1, 1)).encode_to_bytes();
    let gzip = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let zlib = |b: &[u8]| {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let zeros = vec![0u8; 1 << 20];
    let mut framed = snap::write::FrameEncoder::new(Vec::new());
    framed.write_all(&zeros[..64 << 10]).unwrap();
    let framed = framed.into_inner().unwrap();
    let mut two_members = gzip(b"first member ");
    two_members.extend(gzip(b"second member"));
    vec![
        ("identity", input(0, 4096, &proto)),
        ("gzip", input(1, 4096, &gzip(&proto))),
        (
            "zstd",
            input(2, 4096, &zstd::encode_all(&proto[..], 3).unwrap()),
        ),
        ("deflate-zlib", input(3, 4096, &zlib(&proto))),
        (
            "snappy-raw",
            input(
                4,
                4096,
                &snap::raw::Encoder::new().compress_vec(&proto).unwrap(),
            ),
        ),
        ("gzip-two-members", input(6, 64, &two_members)),
        // bombs: far more output than the cap
        ("gzip-bomb-1mib", input(1, 4096, &gzip(&zeros))),
        ("deflate-bomb-1mib", input(8, 4096, &zlib(&zeros))),
        (
            "zstd-bomb-16mib",
            input(
                2,
                4096,
                &zstd::encode_all(&vec![0u8; 16 << 20][..], 19).unwrap(),
            ),
        ),
        ("snappy-framed-bomb-64kib", input(9, 1024, &framed)),
        // a raw snappy header declaring 4 GiB, then nothing
        (
            "snappy-raw-huge-length",
            input(4, 4096, &[0x80, 0x80, 0x80, 0x80, 0x10, 0x00]),
        ),
        ("gzip-truncated", input(1, 4096, &gzip(&proto)[..20])),
    ]
}

fn config_load() -> Files {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut out: Files = ["quickstart", "gateway", "logs-to-loki", "fanout"]
        .into_iter()
        .map(|n| (n, std::fs::read(dir.join(format!("{n}.yaml"))).unwrap()))
        .collect();
    let hand: [(&'static str, &str); 9] = [
        ("empty", ""),
        ("root-sequence", "- receivers\n- exporters\n"),
        ("root-scalar", "42\n"),
        ("empty-keys", "\"\": 1\nreceivers: {\"\": {}}\nservice: {\"\": 1}\n"),
        ("non-string-keys", "1: a\nreceivers: {[a]: {}}\n"),
        (
            "anchors",
            "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nreceivers: *c\n",
        ),
        (
            "env",
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: ${env:HOST}:${env:PORT}\nprocessors:\n  batch:\n    send_batch_size: ${env:NUM}\n    timeout: ${env:UNSET:-1s}\n  memory_limiter:\n    limit_mib: ${YAML}\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    traces: {receivers: [otlp], processors: [batch], exporters: [debug]}\n",
        ),
        (
            "bad-references",
            "receivers: {otlp: {}}\nexporters: {prometheus: {}}\nservice:\n  pipelines:\n    traces: {receivers: [otlp, otlp, nope], processors: [batch], exporters: [prometheus]}\n    bogus/x: {}\n",
        ),
        (
            "two-sources",
            "receivers: {otlp: {protocols: {http: {}}}}\nexporters: {debug: {}}\n\0service: {pipelines: {logs: {receivers: [otlp], exporters: [debug]}}}\n",
        ),
    ];
    out.extend(hand.map(|(n, y)| (n, y.as_bytes().to_vec())));
    let mut deep = String::from("receivers: ");
    deep.push_str(&"[".repeat(120));
    deep.push_str(&"]".repeat(120));
    out.push(("deep-nesting", deep.into_bytes()));
    out
}

/// Choice bytes, then `0xff`-separated strings.
fn structured(choices: &[u8], strings: &[&str]) -> Vec<u8> {
    let mut out = choices.to_vec();
    for (i, s) in strings.iter().enumerate() {
        if i > 0 {
            out.push(0xff);
        }
        out.extend_from_slice(s.as_bytes());
    }
    out
}

fn loki_labels() -> Files {
    let mut out = vec![
        (
            "otel-names",
            structured(
                &[0, 11, 3, 1],
                &[
                    "service.name",
                    "checkout",
                    "http.route",
                    "/api/v1/{id}",
                    "k8s.pod.name",
                    "checkout-7d9f",
                ],
            ),
        ),
        (
            "invalid-label-names",
            structured(
                &[1, 0, 1, 0],
                &["9lives", "a-b", "", "__x", "_", "日本語", "a b"],
            ),
        ),
        (
            "quotes-and-escapes",
            structured(
                &[2, 20, 2, 1],
                &["x\"y", "back\\slash", "new\nline", "}{", "a=b,c"],
            ),
        ),
        (
            "long-values",
            structured(
                &[0, 9, 0, 1],
                &["fuzz key", &"v".repeat(200), "http.route", &"é".repeat(40)],
            ),
        ),
    ];
    let mut bad_utf8 = structured(&[1, 5, 1, 0], &["ok"]);
    bad_utf8.extend_from_slice(&[0xff, 0xc3, 0x28, 0xff, 0xe2, 0x82]);
    out.push(("invalid-utf8", bad_utf8));
    out
}

fn prometheus_names() -> Vec<(&'static str, Vec<u8>)> {
    // choices: metric kinds (bits 0..5), namespace/suffixes/resource labels (bits of byte 1),
    // timestamps, value
    vec![
        (
            "otel-names",
            structured(
                &[0x3f, 0x07, 1, 3],
                &[
                    "app",
                    "http.server.duration",
                    "s",
                    "Duration of requests.",
                    "http.route",
                    "/a",
                ],
            ),
        ),
        (
            "units",
            structured(
                &[0x3f, 0x02, 0, 1],
                &[
                    "",
                    "bytes.sent",
                    "By/s",
                    "",
                    "{request}",
                    "1",
                    "ms",
                    "Cel",
                    "%",
                    "kBy",
                ],
            ),
        ),
        (
            "hostile-names",
            structured(
                &[0x3f, 0x07, 1, 0],
                &[
                    "9ns",
                    "0starts.with.digit",
                    "",
                    "__x",
                    "_",
                    "a:b",
                    "métrique",
                    "new\nline",
                    "tab\there",
                    "quote\"d",
                ],
            ),
        ),
        (
            "suffix-twice",
            structured(
                &[0x02, 0x02, 0, 5],
                &[
                    "",
                    "requests_total",
                    "1",
                    "ratio_ratio",
                    "seconds_total",
                    "s",
                ],
            ),
        ),
    ]
}

fn item_edit() -> Files {
    let mut out: Files = Vec::new();
    for (n, s, b) in protobufs() {
        for p in 0..3u8 {
            let name: &'static str = Box::leak(format!("{n}-p{p}").into_boxed_str());
            out.push((name, [vec![s, p], b.clone()].concat()));
        }
    }
    out
}

fn ottl_compile() -> Files {
    vec![
        ("demo-pattern", br#"replace_pattern(name, "\?.*", "")"#.to_vec()),
        ("demo-match", br#"replace_match(name, "GET /api/products/*", "GET /api/products/{productId}")"#.to_vec()),
        ("set-where", br#"set(attributes["x"], Concat([attributes["a"], name], "-")) where kind == SPAN_KIND_SERVER and not IsMatch(name, "^GET")"#.to_vec()),
        ("math", br#"set(attributes["d"], (end_time_unix_nano - start_time_unix_nano) / 1000)"#.to_vec()),
        ("condition", br#"attributes["http.route"] == "/healthz" or severity_number < SEVERITY_NUMBER_WARN"#.to_vec()),
        ("json", br#"merge_maps(attributes, ParseJSON("{\"a\": [1, 2.5, true, null]}"), "upsert")"#.to_vec()),
        ("bad", br#"set(name, "x) where ((("#.to_vec()),
    ]
}

fn prometheus_exposition() -> Files {
    vec![
        ("text", b"# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\",path=\"/a \\\"b\\\"\"} 1027 1395066363000\n# TYPE rpc summary\nrpc{quantile=\"0.5\"} 4773\nrpc_sum 1.7560473e+07\nrpc_count 2693\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\nuntyped_thing NaN\n".to_vec()),
        ("openmetrics", b"# TYPE jobs counter\n# HELP jobs Jobs.\njobs_total{q=\"a\"} 10.0 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\"} 1.0 1700000000.5\njobs_created{q=\"a\"} 1.7e+09\n# TYPE t gauge\n# UNIT t_celsius celsius\n# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 3\ng_gcount 3\ng_gsum 2.5\n# TYPE s stateset\ns{s=\"a\"} 1\n# TYPE b info\nb_info{v=\"1\"} 1\n# EOF\n".to_vec()),
        ("bad", b"metric{a=\"1\",a=\"2\"} 1\nx{ 1\n# EOF\ntrailing".to_vec()),
    ]
}

fn prometheus_relabel() -> Files {
    let with_ff = |parts: &[&str]| {
        let mut out = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.push(0xff);
            }
            out.extend_from_slice(p.as_bytes());
        }
        out
    };
    vec![
        ("replace", with_ff(&["{source_labels: [__address__], regex: '(.*):\\d+', target_label: host, replacement: '$1'}", "__address__", "h:9100", "job", "node"])),
        ("labelmap", with_ff(&["{action: labelmap, regex: '__meta_(.+)'}", "__meta_pod", "p1", "a", "b"])),
        ("hashmod", with_ff(&["{action: hashmod, source_labels: [instance], modulus: 4, target_label: shard}", "instance", "x:1"])),
        ("drop", with_ff(&["{action: drop, source_labels: [a, b], separator: '-', regex: '1-2'}", "a", "1", "b", "2"])),
        ("bad-regex", with_ff(&["{regex: '(('}", "a", "1"])),
    ]
}
