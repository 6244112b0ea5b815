//! The name targets: Loki labels and Prometheus metric and label names, and a checker of
//! scraped lines.

use std::cell::RefCell;
use std::collections::BTreeMap;

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

use otelgw::component::Diagnostics;
use otelgw::exporters::loki::{LokiConfig, LokiExporter};
use otelgw::exporters::prometheus::render::{render, Format};
use otelgw::exporters::prometheus::store::{Options, Store};
use otelgw::exporters::prometheus::translate;
use otelgw::telemetry::metrics::Registry;

use super::{is_label_name, is_metric_name, kv, Input};

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
                    LokiExporter::new("loki", &cfg, &reg, None).expect("the loki exporter builds")
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
