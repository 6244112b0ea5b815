//! The fuzz targets, shared by the two runners: the cargo-fuzz crate (`fuzz_targets/<name>.rs`,
//! one libFuzzer binary per target) and the plain `cargo test` replay (`tests/it/fuzz_replay.rs`,
//! every corpus file plus a bounded proptest run). Each target takes arbitrary bytes, must never
//! panic, and asserts the property its doc names: an assertion failing is a crash like any
//! other.
//!
//! Structured targets read their input with [`Input`]: a few leading bytes of choices, then
//! strings separated by `0xff` (a byte that never occurs in UTF-8).

// Each libFuzzer binary uses one target of this file.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point, metric, number_data_point, summary_data_point,
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use otelgw::component::{Diagnostics, Signal};
use otelgw::config::{load_sources, Source};
use otelgw::data::{Payload, RequestMeta, Telemetry};
use otelgw::exporters::loki::{LokiConfig, LokiExporter};
use otelgw::exporters::prometheus::render::{render, Format};
use otelgw::exporters::prometheus::store::{Options, Store};
use otelgw::exporters::prometheus::translate;
use otelgw::processors::resource::{ResourceConfig, ResourceProcessor};
use otelgw::processors::{Processor, Rejections};
use otelgw::receivers::decode::{
    check_or_decode, decode_payload, decompress, ContentEncoding, DecodeError, PayloadEncoding,
};
use otelgw::receivers::intake::drop_invalid_ids;
use otelgw::telemetry::metrics::Registry;
use otelgw::wire;

/// Every target by name (the names of `fuzz_targets/*.rs` and of `corpus/*/`).
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("wire_scan", wire_scan),
    ("json_decode", json_decode),
    ("decompress", decompress_capped),
    ("config_load", config_load),
    ("resource_edit", resource_edit),
    ("loki_labels", loki_labels),
    ("prometheus_names", prometheus_names),
];

// ---- oracles, written from the rules, not from otelgw's code ----

/// Loki's (and Prometheus') label name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Prometheus' metric name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

// ---- reading structured inputs ----

/// A fuzz input as a few choice bytes followed by `0xff`-separated strings.
pub struct Input<'a> {
    head: &'a [u8],
    strings: Vec<String>,
    next: usize,
}

impl<'a> Input<'a> {
    /// The first `choices` bytes (fewer if the input is shorter) are choices; the rest is split
    /// at `0xff` into strings (invalid UTF-8 becomes U+FFFD).
    pub fn new(data: &'a [u8], choices: usize) -> Input<'a> {
        let (head, rest) = data.split_at(choices.min(data.len()));
        let strings = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split(|b| *b == 0xff)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        };
        Input {
            head,
            strings,
            next: 0,
        }
    }

    /// Choice byte `i` (0 when the input is shorter).
    pub fn choice(&self, i: usize) -> u8 {
        self.head.get(i).copied().unwrap_or(0)
    }

    /// The next string, cycling through them (`""` when there are none).
    pub fn string(&mut self) -> String {
        if self.strings.is_empty() {
            return String::new();
        }
        let s = self.strings[self.next % self.strings.len()].clone();
        self.next += 1;
        s
    }

    pub fn strings(&self) -> &[String] {
        &self.strings
    }
}

fn kv(key: String, value: String) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

// ---- 1. wire scan vs prost ----

/// `wire::scan` agrees with a prost decode about validity for every signal (the module's
/// contract: "accepts exactly what prost accepts"), and when both accept, its item and bad-id
/// counts are what otelgw computes from the decoded request (`item_count`,
/// `drop_invalid_ids`).
pub fn wire_scan(data: &[u8]) {
    for signal in Signal::ALL {
        let scanned = wire::scan(signal, data);
        let decoded = Telemetry::decode_proto(signal, data);
        match (scanned, decoded) {
            (Ok(s), Ok(mut t)) => {
                assert_eq!(s.items, t.item_count(), "{signal}: item count");
                let mut r = Rejections::default();
                drop_invalid_ids(&mut t, &mut r);
                assert_eq!(s.bad_ids, r.count, "{signal}: bad ids");
            }
            (Err(_), Err(_)) => {}
            (s, d) => panic!(
                "{signal}: scan says {s:?}, prost says {:?}",
                d.map(|t| t.item_count())
            ),
        }
    }
}

// ---- 2. OTLP/JSON ----

/// `check_or_decode` on a JSON body: an error is `DecodeError::Json` (never a panic, never
/// another kind), a success is a decoded request of the signal, the same as `decode_payload`
/// gives, whose protobuf encoding otelgw's own scan and prost both accept with the same item
/// count, and whose JSON encoding decodes back to the same request.
pub fn json_decode(data: &[u8]) {
    for signal in Signal::ALL {
        for reads_items in [false, true] {
            let got = check_or_decode(
                signal,
                PayloadEncoding::Json,
                Bytes::copy_from_slice(data),
                reads_items,
            );
            let t = match got {
                Ok(Payload::Decoded(t)) => t,
                Ok(Payload::Encoded(_)) => panic!("{signal}: JSON stayed encoded"),
                Err(DecodeError::Json(_)) => continue,
                Err(e) => panic!("{signal}: JSON error of kind {}: {e}", e.kind()),
            };
            assert_eq!(t.signal(), signal);
            let again = decode_payload(signal, PayloadEncoding::Json, data);
            assert!(
                again.as_ref().is_ok_and(|a| same(a, &t)),
                "{signal}: decode_payload differs: {again:?}"
            );
            let proto = t.encode_to_bytes();
            let scan = wire::scan(signal, &proto);
            assert_eq!(
                scan.as_ref().map(|s| s.items),
                Ok(t.item_count()),
                "{signal}: protobuf of a JSON request"
            );
            let back = Telemetry::decode_proto(signal, &proto);
            assert!(
                back.as_ref().is_ok_and(|b| same(b, &t)),
                "{signal}: protobuf round trip: {back:?}"
            );
            let json = t
                .to_json()
                .unwrap_or_else(|e| panic!("{signal}: to_json: {e}"));
            let back = Telemetry::decode_json(signal, &json);
            assert!(
                back.as_ref().is_ok_and(|b| same(b, &t)),
                "{signal}: JSON round trip of {}: {back:?}",
                String::from_utf8_lossy(&json)
            );
        }
    }
}

/// Equal as protobuf (so NaN values compare by their bits).
fn same(a: &Telemetry, b: &Telemetry) -> bool {
    a.encode_to_bytes() == b.encode_to_bytes()
}

// ---- 3. decompression under a cap ----

const ENCODINGS: [ContentEncoding; 5] = [
    ContentEncoding::Identity,
    ContentEncoding::Gzip,
    ContentEncoding::Zstd,
    ContentEncoding::Deflate,
    ContentEncoding::Snappy,
];

/// Input: encoding (1 byte), cap (2 bytes, little endian, × 16: up to ~1 MiB), body.
/// `decompress` never returns more than the cap, says `TooLarge` with the cap it was given,
/// and returns an identity body unchanged. Then the body is compressed with that encoding
/// (both deflate wrappings, both snappy formats) and must come back exactly when it fits the
/// cap, or be `TooLarge` when it does not.
pub fn decompress_capped(data: &[u8]) {
    let [e, c0, c1, body @ ..] = data else {
        return;
    };
    let enc = ENCODINGS[usize::from(*e) % ENCODINGS.len()];
    let cap = usize::from(u16::from_le_bytes([*c0, *c1])) * 16;
    match decompress(enc, body, cap) {
        Ok(out) => {
            assert!(
                out.len() <= cap,
                "{enc:?}: {} bytes over cap {cap}",
                out.len()
            );
            if enc == ContentEncoding::Identity {
                assert_eq!(out, body);
            }
        }
        Err(DecodeError::TooLarge { limit }) => assert_eq!(limit, cap, "{enc:?}"),
        Err(DecodeError::Corrupt { .. }) => {
            assert_ne!(enc, ContentEncoding::Identity, "identity is never corrupt")
        }
        Err(other) => panic!("{enc:?}: unexpected error {other:?}"),
    }
    // the round trip
    let variant = *e / 5 % 2 == 1;
    let compressed = compress(enc, body, variant);
    let got = decompress(enc, &compressed, cap);
    if body.len() <= cap {
        assert!(
            got.as_ref().is_ok_and(|o| o == body),
            "{enc:?} (variant {variant}): round trip of {} bytes under cap {cap}: {:?}",
            body.len(),
            got.map(|o| o.len())
        );
    } else {
        assert_eq!(got, Err(DecodeError::TooLarge { limit: cap }), "{enc:?}");
    }
}

fn compress(enc: ContentEncoding, body: &[u8], variant: bool) -> Vec<u8> {
    fn finish<W: std::io::Write>(
        mut w: W,
        body: &[u8],
        done: impl FnOnce(W) -> std::io::Result<Vec<u8>>,
    ) -> Vec<u8> {
        w.write_all(body).expect("compress");
        done(w).expect("compress")
    }
    let level = flate2::Compression::fast();
    match enc {
        ContentEncoding::Identity => body.to_vec(),
        ContentEncoding::Gzip => finish(
            flate2::write::GzEncoder::new(Vec::new(), level),
            body,
            |w| w.finish(),
        ),
        ContentEncoding::Deflate if variant => finish(
            flate2::write::DeflateEncoder::new(Vec::new(), level),
            body,
            |w| w.finish(),
        ),
        ContentEncoding::Deflate => finish(
            flate2::write::ZlibEncoder::new(Vec::new(), level),
            body,
            |w| w.finish(),
        ),
        ContentEncoding::Zstd => zstd::encode_all(body, 1).expect("zstd"),
        ContentEncoding::Snappy if variant => {
            let framed = finish(snap::write::FrameEncoder::new(Vec::new()), body, |w| {
                w.into_inner().map_err(|e| e.into_error())
            });
            if framed.is_empty() {
                // snap writes nothing for no data; the empty stream is its identifier chunk
                // (corpus/decompress/regress-snappy-framed-empty-body)
                b"\xff\x06\x00\x00sNaPpY".to_vec()
            } else {
                framed
            }
        }
        ContentEncoding::Snappy => snap::raw::Encoder::new()
            .compress_vec(body)
            .expect("snappy"),
    }
}

// ---- 4. the config loader ----

/// The environment the config target expands `${env:…}` with.
fn fuzz_env(name: &str) -> Option<String> {
    match name {
        "PORT" => Some("4317".into()),
        "NUM" => Some("42".into()),
        "FLAG" => Some("true".into()),
        "HOST" => Some("127.0.0.1".into()),
        "YAML" => Some("{a: [1, 2]}".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// Input: YAML text (invalid UTF-8 replaced), split into two config sources at the first NUL.
/// `load_sources` never panics; a refusal lists at least one error; every error and warning
/// has a non-empty path and a message; a config it accepts has pipelines whose ids all name
/// configured components that support the pipeline's signal, and prints (`print-config`).
pub fn config_load(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let sources: Vec<Source> = text
        .splitn(2, '\0')
        .enumerate()
        .map(|(i, t)| Source {
            name: format!("fuzz-{i}.yaml"),
            text: t.to_string(),
        })
        .collect();
    let check = |issues: &[otelgw::config::Issue]| {
        for i in issues {
            assert!(!i.path.is_empty(), "an issue without a path: {i:?}");
            assert!(!i.message.is_empty(), "an issue without a message: {i:?}");
        }
    };
    match load_sources(&sources, &fuzz_env) {
        Err(e) => {
            assert!(!e.errors.is_empty(), "refused without an error: {e:?}");
            check(&e.errors);
            check(&e.warnings);
        }
        Ok(cfg) => {
            check(&cfg.warnings);
            for (pid, spec) in &cfg.pipelines {
                for r in &spec.receivers {
                    assert!(cfg.receivers.contains_key(r), "{pid}: receiver {r}");
                }
                for p in &spec.processors {
                    let c = cfg.processors.get(p);
                    assert!(c.is_some_and(|c| c.supports(pid.signal)), "{pid}: {p}");
                }
                for x in &spec.exporters {
                    let c = cfg.exporters.get(x);
                    assert!(c.is_some_and(|c| c.supports(pid.signal)), "{pid}: {x}");
                }
            }
            let _ = cfg.to_redacted_yaml();
        }
    }
}

// ---- 5. the resource editor on encoded requests ----

/// The `resource` processor the editor runs: one action of each kind that edits in place.
fn resource_processor() -> &'static ResourceProcessor {
    static P: OnceLock<ResourceProcessor> = OnceLock::new();
    P.get_or_init(|| {
        let cfg: ResourceConfig = serde_norway::from_str(
            r#"
attributes:
  - {key: deployment.environment, value: fuzz, action: insert}
  - {key: service.name, value: edited, action: update}
  - {key: host.name, from_attribute: service.name, action: upsert}
  - {key: secret, action: hash}
  - {pattern: "^tmp\\.", action: delete}
  - {key: k8s.pod.name, pattern: "^(?P<pod_base>[a-z]+)-", action: extract}
  - {key: count, converted_type: int, action: convert}
"#,
        )
        .expect("the fixed resource config parses");
        let mut diag = Diagnostics::default();
        cfg.validate("processors.resource", &mut diag);
        assert!(diag.errors.is_empty(), "{:?}", diag.errors);
        cfg.build()
    })
}

/// Input: signal (1 byte), then an encoded export request. `wire::edit_resources` never
/// panics; on a request `wire::scan` accepts it succeeds (its contract), its output is accepted
/// by scan and prost with the same item count, and decodes to what decoding the whole request
/// and editing its resources gives.
pub fn resource_edit(data: &[u8]) {
    let [s, buf @ ..] = data else {
        return;
    };
    let signal = Signal::ALL[usize::from(*s) % 3];
    let p = resource_processor();
    let meta = RequestMeta::default();
    let edited = wire::edit_resources(buf, |r| p.edit_resource(r, &meta));
    let Ok(scan) = wire::scan(signal, buf) else {
        return;
    };
    let edited = edited.unwrap_or_else(|| panic!("{signal}: scan accepted, the editor did not"));
    assert_eq!(
        wire::scan(signal, &edited).map(|s| s.items),
        Ok(scan.items),
        "{signal}: scan of the edited request"
    );
    let mut want = Telemetry::decode_proto(signal, buf).expect("scan accepted, so prost does");
    for r in want.resources_mut() {
        p.edit_resource(r, &meta);
    }
    let got = Telemetry::decode_proto(signal, &edited)
        .unwrap_or_else(|e| panic!("{signal}: the edited request does not decode: {e}"));
    assert!(
        same(&got, &want),
        "{signal}: edited bytes differ from the decoded edit"
    );
}

// ---- 6. Loki labels ----

/// A Loki exporter per line format (built once per thread and renewed now and then, so its
/// table of active streams stays small).
fn with_loki<R>(format: u8, f: impl FnOnce(&LokiExporter) -> R) -> R {
    thread_local! {
        static EXPORTERS: RefCell<(u32, Vec<LokiExporter>)> = const { RefCell::new((0, Vec::new())) };
    }
    EXPORTERS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let (uses, exporters) = &mut *cell;
        *uses += 1;
        if exporters.is_empty() || *uses % 4096 == 0 {
            let reg = Registry::new();
            *exporters = ["structured_metadata", "logfmt", "json"]
                .iter()
                .map(|format| {
                    let cfg: LokiConfig = serde_norway::from_str(&format!(
                        r#"
endpoint: http://127.0.0.1:3100/loki/api/v1/push
format: {format}
max_labels: 4
max_label_value_length: 32
max_line_size: 64
labels:
  resource: {{service.name: service_name, "k8s.pod.name": pod, "fuzz key": fuzz_key}}
  attributes: {{http.route: route, "": empty_key}}
  static: {{cluster: c1}}
"#
                    ))
                    .expect("the fixed loki config parses");
                    LokiExporter::new("loki", &cfg, &reg).expect("the loki exporter builds")
                })
                .collect();
        }
        f(&exporters[usize::from(format) % exporters.len()])
    })
}

/// Input: format, severity and shape choices (4 bytes), then strings. The label sanitiser
/// (`translate::label_name`, what the Loki exporter names structured metadata with) gives valid
/// Loki label names for every string; config validation refuses exactly the label names Loki
/// refuses; and every stream the exporter builds from records with these strings as attribute
/// keys, values, bodies and severities has a selector that parses into valid label names,
/// entries whose structured metadata names are valid, and every record accounted for.
pub fn loki_labels(data: &[u8]) {
    let mut input = Input::new(data, 4);
    for s in input.strings() {
        let n = translate::label_name(s);
        assert!(is_label_name(&n), "label_name({s:?}) = {n:?}");
    }
    // validation: an error at the label's path exactly when the name is invalid
    let (a, b, c) = (input.string(), input.string(), input.string());
    let mut cfg = LokiConfig {
        endpoint: "http://127.0.0.1:3100/loki/api/v1/push".into(),
        ..Default::default()
    };
    cfg.labels.resource = BTreeMap::from([("r".to_string(), a.clone())]);
    cfg.labels.attributes = BTreeMap::from([("a".to_string(), b.clone())]);
    cfg.labels.static_labels = BTreeMap::from([(c.clone(), "v".to_string())]);
    let mut diag = Diagnostics::default();
    cfg.validate("exporters.loki", &mut diag);
    for (path, label) in [
        ("exporters.loki.labels.resource.r".to_string(), &a),
        ("exporters.loki.labels.attributes.a".to_string(), &b),
        (format!("exporters.loki.labels.static.{c}"), &c),
    ] {
        let refused = diag.errors.iter().any(|e| e.path == path);
        assert_eq!(
            refused,
            !is_label_name(label),
            "label {label:?} at {path}: {:?}",
            diag.errors
        );
    }
    // streams built from records made of the strings
    let records_n = 1 + usize::from(input.choice(2) % 4);
    let mut resource = vec![kv("k8s.pod.name".into(), input.string())];
    if input.choice(3) & 1 == 1 {
        resource.push(kv("service.name".into(), input.string()));
    }
    for _ in 0..input.strings().len().min(6) / 2 {
        let (k, v) = (input.string(), input.string());
        resource.push(kv(k, v));
    }
    let records: Vec<LogRecord> = (0..records_n)
        .map(|i| LogRecord {
            severity_number: i32::from(input.choice(1)) - 2 + i as i32,
            severity_text: input.string(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(input.string())),
            }),
            attributes: vec![
                kv("http.route".into(), input.string()),
                kv(input.string(), input.string()),
            ],
            trace_id: input.string().into_bytes(),
            span_id: input.string().into_bytes(),
            time_unix_nano: i as u64,
            ..Default::default()
        })
        .collect();
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: input.string(),
                    ..Default::default()
                }),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let (pushes, dropped) = with_loki(input.choice(0), |e| e.build(&req));
    let mut entries = 0;
    for (_tenant, push) in &pushes {
        for stream in &push.streams {
            let labels = otelgw::exporters::loki::parse_selector(&stream.labels)
                .unwrap_or_else(|| panic!("selector does not parse: {}", stream.labels));
            assert!(labels.contains_key("service_name"), "{}", stream.labels);
            assert!(labels.len() <= 4, "max_labels: {}", stream.labels);
            for (name, value) in &labels {
                assert!(is_label_name(name), "label {name:?} in {}", stream.labels);
                assert!(
                    value.len() <= 32,
                    "value {value:?} over max_label_value_length"
                );
            }
            for e in &stream.entries {
                entries += 1;
                for m in &e.structured_metadata {
                    assert!(is_label_name(&m.name), "metadata name {:?}", m.name);
                }
            }
        }
    }
    assert_eq!(
        entries + dropped as usize,
        records_n,
        "every record accounted for"
    );
}

// ---- 7. Prometheus names ----

/// Input: kind and option choices (4 bytes), then strings. The translator's metric names and
/// family names (every kind, with and without suffixes and namespace) match
/// `[a-zA-Z_:][a-zA-Z0-9_:]*` and its label names `[a-zA-Z_][a-zA-Z0-9_]*`. Then a request whose
/// names, units, descriptions, attribute keys and values, scope and resource are the strings is
/// stored and scraped in both formats: every line of both is a well-formed comment or sample
/// whose metric and label names follow those rules.
pub fn prometheus_names(data: &[u8]) {
    let mut input = Input::new(data, 4);
    let namespace = input.string();
    for s in input.strings() {
        let l = translate::label_name(s);
        assert!(is_label_name(&l), "label_name({s:?}) = {l:?}");
        for ns in ["", namespace.as_str()] {
            let m = translate::metric_name(s, ns);
            assert!(is_metric_name(&m), "metric_name({s:?}, {ns:?}) = {m:?}");
            for kind in [
                translate::NameKind::Counter,
                translate::NameKind::Gauge,
                translate::NameKind::Other,
            ] {
                for add in [false, true] {
                    let f = translate::family_name(s, s, kind, ns, add);
                    assert!(
                        is_metric_name(&f),
                        "family_name({s:?}, {kind:?}, {add}) = {f:?}"
                    );
                }
            }
        }
    }
    let attrs: Vec<KeyValue> = input
        .strings()
        .iter()
        .map(|s| kv(s.clone(), s.clone()))
        .collect();
    for name in translate::labels(&attrs).keys() {
        assert!(is_label_name(name), "labels() gave {name:?}");
    }

    // through the store and both renderers
    let opts = Options {
        namespace: if input.choice(1) & 1 == 1 {
            namespace
        } else {
            String::new()
        },
        const_labels: BTreeMap::from([("env".to_string(), "fuzz".to_string())]),
        add_suffixes: input.choice(1) & 2 == 2,
        resource_to_labels: input.choice(1) & 4 == 4,
        max_series: 10_000,
        expiration: std::time::Duration::from_secs(300),
    };
    let store = Store::new(opts, &Registry::new(), "prometheus");
    store.ingest(&metrics_request(&mut input));
    for format in [Format::Text, Format::OpenMetrics] {
        let out = render(&store, format, input.choice(2) & 1 == 1);
        for line in out.lines() {
            check_exposition_line(line, format)
                .unwrap_or_else(|why| panic!("{format:?}: {why} in line {line:?}\n{out}"));
        }
    }
}

fn metrics_request(input: &mut Input) -> ExportMetricsServiceRequest {
    let kinds = input.choice(0);
    let attrs = |input: &mut Input| vec![kv(input.string(), input.string())];
    let number = |input: &mut Input, attributes: Vec<KeyValue>| NumberDataPoint {
        attributes,
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsDouble(f64::from(
            input.choice(3),
        ))),
        exemplars: vec![Exemplar {
            trace_id: input.string().into_bytes(),
            span_id: input.string().into_bytes(),
            value: Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsInt(1)),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut metrics = Vec::new();
    for i in 0..6u8 {
        if kinds & (1 << i) == 0 && !(kinds == 0 && i == 0) {
            continue;
        }
        let (name, unit, description) = (input.string(), input.string(), input.string());
        let a = attrs(input);
        let cumulative = AggregationTemporality::Cumulative as i32;
        let data = match i {
            0 => metric::Data::Gauge(Gauge {
                data_points: vec![number(input, a)],
            }),
            1 | 2 => metric::Data::Sum(Sum {
                data_points: vec![number(input, a)],
                aggregation_temporality: cumulative,
                is_monotonic: i == 1,
            }),
            3 => metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: a,
                    time_unix_nano: 1_700_000_000_000_000_000,
                    count: 3,
                    sum: Some(6.0),
                    bucket_counts: vec![1, 1, 1],
                    explicit_bounds: vec![1.0, 2.5],
                    ..Default::default()
                }],
                aggregation_temporality: cumulative,
            }),
            4 => metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: a,
                    time_unix_nano: 1_700_000_000_000_000_000,
                    count: 3,
                    sum: Some(6.0),
                    scale: 1,
                    zero_count: 1,
                    positive: Some(exponential_histogram_data_point::Buckets {
                        offset: -1,
                        bucket_counts: vec![1, 1],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: cumulative,
            }),
            _ => metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: a,
                    time_unix_nano: 1_700_000_000_000_000_000,
                    count: 2,
                    sum: 3.0,
                    quantile_values: vec![summary_data_point::ValueAtQuantile {
                        quantile: 0.5,
                        value: 1.5,
                    }],
                    ..Default::default()
                }],
            }),
        };
        metrics.push(Metric {
            name,
            description,
            unit,
            data: Some(data),
            ..Default::default()
        });
    }
    let mut resource = vec![
        kv("service.name".into(), input.string()),
        kv("service.instance.id".into(), input.string()),
    ];
    resource.push(kv(input.string(), input.string()));
    resource.push(KeyValue {
        key: input.string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(any_value::Value::StringValue(input.string())),
                }],
            })),
        }),
        ..Default::default()
    });
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: input.string(),
                    version: input.string(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Checks one line of a scrape: `# HELP|TYPE|UNIT <name> …`, `# EOF` (OpenMetrics), or a
/// sample `<name>[{<label>="<value>",…}] <value>[ <timestamp>]`, in OpenMetrics optionally
/// followed by an exemplar ` # {<labels>} <value>[ <timestamp>]`.
pub fn check_exposition_line(line: &str, format: Format) -> Result<(), String> {
    if let Some(comment) = line.strip_prefix("# ") {
        if comment == "EOF" && format == Format::OpenMetrics {
            return Ok(());
        }
        let mut parts = comment.splitn(3, ' ');
        let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let known = match format {
            Format::Text => ["HELP", "TYPE"].contains(&kind),
            Format::OpenMetrics => ["HELP", "TYPE", "UNIT"].contains(&kind),
        };
        if !known {
            return Err(format!("unknown comment {kind:?}"));
        }
        if !is_metric_name(name) {
            return Err(format!("metric name {name:?}"));
        }
        return Ok(());
    }
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let (name, mut rest) = line.split_at(name_end);
    if !is_metric_name(name) {
        return Err(format!("metric name {name:?}"));
    }
    if rest.starts_with('{') {
        rest = label_set(rest)?;
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let (sample, exemplar) = match rest.split_once(" # ") {
        Some((s, e)) if format == Format::OpenMetrics => (s, Some(e)),
        _ => (rest, None),
    };
    let fields: Vec<&str> = sample.split(' ').collect();
    if fields.is_empty() || fields.len() > 2 || fields.iter().any(|f| f.is_empty()) {
        return Err(format!("value and timestamp {sample:?}"));
    }
    if let Some(e) = exemplar {
        let after = label_set(e)?;
        if after.is_empty() || !after.starts_with(' ') {
            return Err("exemplar without a value".into());
        }
    }
    Ok(())
}

/// Parses `{name="value",…}` at the start of `s` (names checked, values with `\\`, `\"`, `\n`
/// escapes); returns what follows the `}`.
fn label_set(s: &str) -> Result<&str, String> {
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value unquoted")?;
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\' | '"' | 'n')) => {}
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err("newline in a label value".into()),
                Some(_) => {}
                None => return Err("unterminated label value".into()),
            }
        };
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}
