//! Deterministic synthetic OTLP requests for tests, benches and the load generator.
//!
//! Shapes follow the load bench spec: spans with 8 attributes (~370 bytes each), log records with
//! ~300-byte bodies and 5 attributes, metrics of every kind with 5 attributes. The same seed
//! always gives the same bytes, so runs are comparable.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point, metric, number_data_point, summary_data_point,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

/// A tiny deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        if v.iter().all(|b| *b == 0) {
            v[0] = 1;
        }
        v
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

pub fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

pub fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.to_string())
}

fn resource(service: &str, i: u64) -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", s(service)),
            kv("service.namespace", s("shop")),
            kv("service.instance.id", s(&format!("{service}-{i}"))),
            kv("host.name", s(&format!("node-{}", i % 7))),
        ],
        dropped_attributes_count: 0,
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "otelgw.testdata".into(),
        version: "1.0.0".into(),
        attributes: vec![kv("lib", s("synthetic"))],
        dropped_attributes_count: 0,
    }
}

/// A request with `resources` × `spans_per_resource` spans; every attribute type appears.
pub fn traces(seed: u64, resources: usize, spans_per_resource: usize) -> ExportTraceServiceRequest {
    let mut rng = Rng::new(seed);
    let base = 1_700_000_000_000_000_000u64 + rng.below(1_000_000_000);
    let resource_spans = (0..resources)
        .map(|r| {
            let spans = (0..spans_per_resource)
                .map(|i| {
                    let start = base + (i as u64) * 1_000;
                    Span {
                        trace_id: rng.bytes(16),
                        span_id: rng.bytes(8),
                        trace_state: String::new(),
                        parent_span_id: if i % 2 == 0 { vec![] } else { rng.bytes(8) },
                        flags: 1,
                        name: format!("GET /api/v1/orders/{}", i % 16),
                        kind: span::SpanKind::Server as i32,
                        start_time_unix_nano: start,
                        end_time_unix_nano: start + 1_000_000 + rng.below(5_000_000),
                        attributes: vec![
                            kv("http.request.method", s("GET")),
                            kv("http.route", s("/api/v1/orders/{id}")),
                            kv("http.response.status_code", any_value::Value::IntValue(200)),
                            kv(
                                "url.full",
                                s(&format!(
                                    "https://shop.example.com/api/v1/orders/{}",
                                    rng.below(100000)
                                )),
                            ),
                            kv("server.address", s("shop.example.com")),
                            kv(
                                "network.peer.port",
                                any_value::Value::IntValue(rng.below(65535) as i64),
                            ),
                            kv("sampled.ratio", any_value::Value::DoubleValue(0.25)),
                            kv("cache.hit", any_value::Value::BoolValue(i % 3 == 0)),
                        ],
                        dropped_attributes_count: 0,
                        events: if i % 8 == 0 {
                            vec![span::Event {
                                time_unix_nano: start + 10,
                                name: "retry".into(),
                                attributes: vec![kv(
                                    "tags",
                                    any_value::Value::ArrayValue(ArrayValue {
                                        values: vec![AnyValue {
                                            value: Some(s("a")),
                                        }],
                                    }),
                                )],
                                dropped_attributes_count: 0,
                            }]
                        } else {
                            vec![]
                        },
                        dropped_events_count: 0,
                        links: vec![],
                        dropped_links_count: 0,
                        status: Some(Status {
                            message: String::new(),
                            code: if i % 10 == 0 { 2 } else { 0 },
                        }),
                    }
                })
                .collect();
            ResourceSpans {
                resource: Some(resource("checkout", r as u64)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// A request with `resources` × `records_per_resource` log records (~300-byte bodies).
pub fn logs(seed: u64, resources: usize, records_per_resource: usize) -> ExportLogsServiceRequest {
    let mut rng = Rng::new(seed);
    let base = 1_700_000_000_000_000_000u64 + rng.below(1_000_000_000);
    let filler = "lorem ipsum dolor sit amet consectetur adipiscing elit ".repeat(5);
    let resource_logs = (0..resources)
        .map(|r| {
            let log_records = (0..records_per_resource)
                .map(|i| LogRecord {
                    time_unix_nano: base + i as u64,
                    observed_time_unix_nano: base + i as u64 + 5,
                    severity_number: [5, 9, 13, 17][i % 4],
                    severity_text: ["DEBUG", "INFO", "WARN", "ERROR"][i % 4].into(),
                    body: Some(AnyValue {
                        value: Some(s(&format!(
                            "request {} finished: {}",
                            rng.below(1_000_000),
                            &filler[..260]
                        ))),
                    }),
                    attributes: vec![
                        kv("http.route", s("/api/v1/orders/{id}")),
                        kv("user.tier", s("gold")),
                        kv("attempt", any_value::Value::IntValue((i % 3) as i64)),
                        kv("latency.ms", any_value::Value::DoubleValue(12.5)),
                        kv("cached", any_value::Value::BoolValue(false)),
                    ],
                    dropped_attributes_count: 0,
                    flags: 1,
                    trace_id: rng.bytes(16),
                    span_id: rng.bytes(8),
                    event_name: String::new(),
                })
                .collect();
            ResourceLogs {
                resource: Some(resource("payments", r as u64)),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

fn point_attrs(i: usize) -> Vec<KeyValue> {
    vec![
        kv("http.route", s(&format!("/api/v1/r{}", i % 10))),
        kv("http.request.method", s("GET")),
        kv("http.response.status_code", any_value::Value::IntValue(200)),
        kv("region", s("eu-west-1")),
        kv("tier", s("gold")),
    ]
}

/// A request with every metric kind (sum, gauge, histogram, exponential histogram, summary),
/// `points` data points each.
pub fn metrics(seed: u64, resources: usize, points: usize) -> ExportMetricsServiceRequest {
    let mut rng = Rng::new(seed);
    let t = 1_700_000_000_000_000_000u64 + rng.below(1_000_000_000);
    let resource_metrics = (0..resources)
        .map(|r| {
            let num = |v: f64, i: usize| NumberDataPoint {
                attributes: point_attrs(i),
                start_time_unix_nano: t - 60_000_000_000,
                time_unix_nano: t,
                exemplars: vec![],
                flags: 0,
                value: Some(number_data_point::Value::AsDouble(v)),
            };
            let metrics = vec![
                Metric {
                    name: "http.server.requests".into(),
                    description: "requests served".into(),
                    unit: "{request}".into(),
                    metadata: vec![],
                    data: Some(metric::Data::Sum(Sum {
                        data_points: (0..points).map(|i| num(i as f64 * 3.0, i)).collect(),
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                },
                Metric {
                    name: "process.memory.usage".into(),
                    description: String::new(),
                    unit: "By".into(),
                    metadata: vec![],
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..points).map(|i| num(1e6 + i as f64, i)).collect(),
                    })),
                },
                Metric {
                    name: "http.server.duration".into(),
                    description: String::new(),
                    unit: "s".into(),
                    metadata: vec![],
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: (0..points)
                            .map(|i| HistogramDataPoint {
                                attributes: point_attrs(i),
                                start_time_unix_nano: t - 60_000_000_000,
                                time_unix_nano: t,
                                count: 6,
                                sum: Some(1.5),
                                bucket_counts: vec![1, 2, 3, 0],
                                explicit_bounds: vec![0.1, 0.5, 1.0],
                                exemplars: vec![],
                                flags: 0,
                                min: Some(0.01),
                                max: Some(0.9),
                            })
                            .collect(),
                        aggregation_temporality: 1,
                    })),
                },
                Metric {
                    name: "rpc.latency".into(),
                    description: String::new(),
                    unit: "ms".into(),
                    metadata: vec![],
                    data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: (0..points)
                            .map(|i| ExponentialHistogramDataPoint {
                                attributes: point_attrs(i),
                                start_time_unix_nano: t - 60_000_000_000,
                                time_unix_nano: t,
                                count: 5,
                                sum: Some(42.0),
                                scale: 2,
                                zero_count: 1,
                                positive: Some(exponential_histogram_data_point::Buckets {
                                    offset: 3,
                                    bucket_counts: vec![1, 2, 1],
                                }),
                                negative: None,
                                flags: 0,
                                exemplars: vec![],
                                min: Some(0.0),
                                max: Some(20.0),
                                zero_threshold: 0.0,
                            })
                            .collect(),
                        aggregation_temporality: 2,
                    })),
                },
                Metric {
                    name: "legacy.summary".into(),
                    description: String::new(),
                    unit: String::new(),
                    metadata: vec![],
                    data: Some(metric::Data::Summary(Summary {
                        data_points: (0..points)
                            .map(|i| SummaryDataPoint {
                                attributes: point_attrs(i),
                                start_time_unix_nano: t - 60_000_000_000,
                                time_unix_nano: t,
                                count: 10,
                                sum: 100.0,
                                quantile_values: vec![summary_data_point::ValueAtQuantile {
                                    quantile: 0.5,
                                    value: 9.0,
                                }],
                                flags: 0,
                            })
                            .collect(),
                    })),
                },
            ];
            ResourceMetrics {
                resource: Some(resource("inventory", r as u64)),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope()),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }
        })
        .collect();
    ExportMetricsServiceRequest { resource_metrics }
}
