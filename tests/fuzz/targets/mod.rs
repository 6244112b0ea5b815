//! The fuzz targets, shared by the two runners: the cargo-fuzz crate (`fuzz_targets/<name>.rs`,
//! one libFuzzer binary per target) and the plain `cargo test` replay (`tests/it/fuzz_replay.rs`,
//! every corpus file plus a bounded proptest run). Each target takes arbitrary bytes, must never
//! panic, and asserts the property its doc names: an assertion failing is a crash like any
//! other.
//!
//! The Loki and Prometheus targets are in [`names`]. Structured targets read their input with [`Input`]: a few leading bytes of choices, then
//! strings separated by `0xff` (a byte that never occurs in UTF-8).

// Each libFuzzer binary uses one target of these files.
#![allow(dead_code)]

mod names;

use std::sync::OnceLock;

use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

use otelgw::component::{Diagnostics, Signal};
use otelgw::config::{load_sources, Source};
use otelgw::data::{Payload, RequestMeta, Telemetry};
use otelgw::processors::resource::{ResourceConfig, ResourceProcessor};
use otelgw::processors::{Processor, Rejections};
use otelgw::receivers::decode::{
    check_or_decode, decode_payload, decompress, ContentEncoding, DecodeError, PayloadEncoding,
};
use otelgw::receivers::intake::drop_invalid_ids;
use otelgw::wire;

pub use names::{check_exposition_line, loki_labels, prometheus_names};

/// A target: arbitrary bytes in, a panic when its property does not hold.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz_targets/*.rs` and of `corpus/*/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("wire_scan", wire_scan),
    ("json_decode", json_decode),
    ("decompress", decompress_capped),
    ("config_load", config_load),
    ("resource_edit", resource_edit),
    ("loki_labels", loki_labels),
    ("prometheus_names", prometheus_names),
    ("item_edit", item_edit),
    ("ottl_compile", ottl_compile),
    ("prometheus_exposition", prometheus_exposition),
    ("prometheus_relabel", prometheus_relabel),
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

// ---- 6. editing items on the wire ----

/// `attributes` (every action kind, include/exclude) and `transform` (span names, log
/// severities and bodies) as processors that edit the encoding, and a `filter`.
fn item_processors() -> &'static [Box<dyn Processor>] {
    static P: OnceLock<Vec<Box<dyn Processor>>> = OnceLock::new();
    P.get_or_init(|| {
        use otelgw::processors::attributes::AttributesConfig;
        use otelgw::processors::filter::FilterConfig;
        use otelgw::processors::transform::TransformConfig;
        use otelgw::telemetry::metrics::Registry;
        let reg = Registry::default();
        let attrs: AttributesConfig = serde_norway::from_str(
            r#"
exclude: {match_type: regexp, services: ["^skip"], span_names: ["^drop"]}
actions:
  - {key: env, value: fuzz, action: insert}
  - {key: http.route, value: 7, action: update}
  - {key: copy, from_attribute: http.route, action: upsert}
  - {key: secret, action: hash}
  - {pattern: "^tmp\\.", action: delete}
  - {key: url, pattern: "^(?P<scheme>[a-z]+)://", action: extract}
  - {key: count, converted_type: int, action: convert}
"#,
        )
        .unwrap_or_default();
        let transform: TransformConfig = serde_norway::from_str(
            r#"
trace_statements:
  - replace_pattern(name, "\\?.*", "")
  - set(attributes["n"], Concat([name, attributes["http.route"]], "|")) where IsString(attributes["http.route"])
log_statements:
  - set(severity_text, "WARN") where severity_number >= 13
  - set(body, Concat(["x", severity_text], ":")) where IsMatch(body, "a")
metric_statements:
  - set(attributes["m"], metric.name)
"#,
        )
        .unwrap_or_default();
        let filter: FilterConfig = serde_norway::from_str(
            r#"{traces: {span: ['attributes["drop"] != nil']}, logs: {log_record: ['severity_number == 1']}, metrics: {datapoint: ['attributes["drop"] == true']}}"#,
        )
        .unwrap_or_default();
        let mut out: Vec<Box<dyn Processor>> = vec![Box::new(attrs.build())];
        for s in Signal::ALL {
            out.push(Box::new(transform.build("transform", s, &reg)));
            out.push(Box::new(filter.build("filter", s, &reg)));
        }
        out
    })
}

/// `wire::edit_items` accepts every request `wire::scan` accepts, and its output decodes to what
/// the same processor gives on the decoded request.
pub fn item_edit(data: &[u8]) {
    let [s, p, buf @ ..] = data else {
        return;
    };
    let signal = Signal::ALL[usize::from(*s) % 3];
    let procs = item_processors();
    // the attributes processor, or the transform / filter built for this signal
    let p: &dyn Processor = match p % 3 {
        0 => procs[0].as_ref(),
        1 => procs[1 + 2 * (usize::from(*s) % 3)].as_ref(),
        _ => procs[2 + 2 * (usize::from(*s) % 3)].as_ref(),
    };
    let Ok(_) = wire::scan(signal, buf) else {
        return;
    };
    if p.reads() != otelgw::processors::Reads::Items {
        return;
    }
    let meta = RequestMeta::default();
    let bytes = Bytes::copy_from_slice(buf);
    let edited = wire::edit_items(signal, &bytes, |item| p.edit_item(item, &meta))
        .unwrap_or_else(|| panic!("{signal}: scan accepted, the item editor did not"));
    wire::scan(signal, &edited.bytes)
        .unwrap_or_else(|e| panic!("{signal}: the edited request does not scan: {e}"));
    let mut want = Telemetry::decode_proto(signal, buf).expect("scan accepted, so prost does");
    p.process(&mut want, &meta, &mut Rejections::default());
    let got = Telemetry::decode_proto(signal, &edited.bytes)
        .unwrap_or_else(|e| panic!("{signal}: the edited request does not decode: {e}"));
    assert!(
        same(&got, &want),
        "{signal}: edited bytes differ from the decoded edit"
    );
}

// ---- 7. OTTL statements from anywhere ----

/// Any text compiles or is refused with a column inside it (never a panic), in every context;
/// what compiles runs on a decoded span and log record without panicking.
pub fn ottl_compile(data: &[u8]) {
    use otelgw::ottl::{compile_condition, compile_statement, Context};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for ctx in [
        Context::Span,
        Context::Log,
        Context::DataPoint,
        Context::Metric,
        Context::Resource,
        Context::Scope,
    ] {
        match compile_statement(ctx, text) {
            Ok(_) => {}
            Err(e) => assert!(
                e.col >= 1 && e.col <= text.len() + 1,
                "column {} of {}",
                e.col,
                text.len()
            ),
        }
        if let Err(e) = compile_condition(ctx, text) {
            assert!(
                e.col >= 1 && e.col <= text.len() + 1,
                "column {} of {}",
                e.col,
                text.len()
            );
        }
    }
    let mut t = Telemetry::Traces(otelgw::testdata::traces(1, 1, 2));
    if let Ok(s) = compile_statement(Context::Span, text) {
        otelgw::ottl::walk::walk(&mut t, Context::Span, &mut |target| {
            let _ = s.execute(target);
            true
        });
    }
    if let Ok(c) = compile_condition(Context::Span, text) {
        otelgw::ottl::walk::walk(&mut t, Context::Span, &mut |target| {
            let _ = c.matches(target);
            true
        });
    }
}

/// Any bytes parse as a Prometheus text 0.0.4 and OpenMetrics 1.0 page or are refused with a
/// line inside the input (never a panic); what parses keeps the parser's invariants (every
/// sample named after its family with a suffix its type allows, valid names, no duplicate
/// labels, OpenMetrics families unique, timestamps in range).
pub fn prometheus_exposition(data: &[u8]) {
    if let Err(e) = otelgw::receivers::prometheus::exposition::fuzz_one(data) {
        panic!("{e}");
    }
}

/// Any relabel rule (YAML) is refused by `check`/`compile` or runs over any label set without
/// panicking; a kept set stays sorted by name, without empty values or duplicate names.
pub fn prometheus_relabel(data: &[u8]) {
    use otelgw::receivers::prometheus::relabel::{process, RelabelConfig};
    let input = Input::new(data, 0);
    let Some((rule, rest)) = input.strings().split_first() else {
        return;
    };
    let Ok(cfg) = serde_norway::from_str::<RelabelConfig>(rule) else {
        return;
    };
    let Ok(rule) = cfg.compile() else {
        return;
    };
    let mut labels: Vec<(String, String)> = Vec::new();
    for pair in rest.chunks(2) {
        if let [k, v] = pair {
            if !v.is_empty() && !labels.iter().any(|(n, _)| n == k) {
                labels.push((k.clone(), v.clone()));
            }
        }
    }
    if process(std::slice::from_ref(&rule), &mut labels) {
        assert!(labels.windows(2).all(|w| w[0].0 < w[1].0), "{labels:?}");
        assert!(labels.iter().all(|(_, v)| !v.is_empty()), "{labels:?}");
    } else {
        assert!(labels.is_empty());
    }
}
