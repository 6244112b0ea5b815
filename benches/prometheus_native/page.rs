//! The page and the stages both Prometheus-native benches run.

use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use otelgw::exporters::prometheus::store::{Options, Store};
use otelgw::exporters::prometheusremotewrite::send::requests;
use otelgw::exporters::prometheusremotewrite::series::{PointSeries, Settings};
use otelgw::exporters::prometheusremotewrite::wire::body;
use otelgw::receivers::prometheus::exposition::{self, Family, Format};
use otelgw::receivers::prometheus::relabel::{Labels, Scratch};
use otelgw::receivers::prometheus::scrape::Shaping;
use otelgw::receivers::prometheus::translate::{Scraped, TargetMeta, TargetState};
use otelgw::telemetry::metrics::Registry;

/// ~100k samples: 80 counter families × 1000 series, 7 gauge families × 1000, 10 histogram
/// families × 100 series × 13 samples; 4 labels each.
pub fn page() -> String {
    let mut out = String::with_capacity(12 << 20);
    let labels = |i: usize| {
        format!(
            "method=\"{}\",code=\"{}\",route=\"/api/v1/items/{}\",pod=\"web-{}\"",
            ["GET", "POST", "PUT", "DELETE"][i % 4],
            [200, 201, 404, 500, 503][i % 5],
            i % 50,
            i
        )
    };
    for f in 0..80 {
        let _ = writeln!(out, "# HELP app_requests_{f}_total Requests of kind {f}.");
        let _ = writeln!(out, "# TYPE app_requests_{f}_total counter");
        for i in 0..1000 {
            let _ = writeln!(out, "app_requests_{f}_total{{{}}} {}", labels(i), i * 7 + f);
        }
    }
    for f in 0..7 {
        let _ = writeln!(out, "# HELP app_inflight_{f} In flight.");
        let _ = writeln!(out, "# TYPE app_inflight_{f} gauge");
        for i in 0..1000 {
            let _ = writeln!(out, "app_inflight_{f}{{{}}} {}.5", labels(i), i % 17);
        }
    }
    let bounds = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
    ];
    for f in 0..10 {
        let _ = writeln!(out, "# HELP app_latency_{f}_seconds Latency.");
        let _ = writeln!(out, "# TYPE app_latency_{f}_seconds histogram");
        for i in 0..100 {
            let l = labels(i);
            for (k, le) in bounds.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "app_latency_{f}_seconds_bucket{{{l},le=\"{le}\"}} {}",
                    (k + 1) * 10 + i
                );
            }
            let _ = writeln!(out, "app_latency_{f}_seconds_sum{{{l}}} {}.25", i * 3);
            let _ = writeln!(out, "app_latency_{f}_seconds_count{{{l}}} {}", 110 + i);
        }
    }
    out
}

pub fn parse(text: &str) -> Vec<Family<'_>> {
    exposition::parse(text, Format::Text).unwrap_or_default()
}

/// The shaping of a job without relabel rules, and its target's labels.
pub struct Fixture {
    shaping: Shaping,
    target: Labels,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            shaping: Shaping {
                honor_labels: false,
                honor_timestamps: true,
                external_labels: Vec::new(),
                metric_rules: Vec::new(),
                sample_limit: 0,
                label_limit: 0,
                label_name_length_limit: 0,
                label_value_length_limit: 0,
            },
            target: vec![
                ("instance".into(), "10.0.0.7:8080".into()),
                ("job".into(), "web".into()),
            ],
        }
    }

    pub fn samples(&self, text: &str) -> (Vec<Scraped>, usize) {
        self.shaping
            .samples(text, Format::Text, &self.target, &mut Scratch::default())
            .unwrap_or_default()
    }
}

pub fn state() -> TargetState {
    TargetState::default()
}

pub fn translate(state: &mut TargetState, samples: Vec<Scraped>) -> ResourceMetrics {
    let meta = TargetMeta {
        job: "web".into(),
        instance: "10.0.0.7:8080".into(),
        scheme: "http".into(),
        labels: Vec::new(),
    };
    state.translate(&meta, samples, &[("up", 1.0)], 1_700_000_000_000_000_000)
}

/// The remote-write exporter's translation: the shared store, then time series.
pub struct RemoteWrite {
    store: Store,
    settings: Settings,
}

impl RemoteWrite {
    pub fn new() -> RemoteWrite {
        RemoteWrite {
            store: Store::new(
                Options {
                    namespace: String::new(),
                    const_labels: Default::default(),
                    add_suffixes: true,
                    resource_to_labels: false,
                    max_series: 0,
                    expiration: std::time::Duration::from_secs(300),
                },
                &Registry::new(),
                "bench",
            ),
            settings: Settings {
                target_info: true,
                ..Settings::default()
            },
        }
    }

    pub fn points(&self, rm: &ResourceMetrics) -> Vec<PointSeries> {
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![rm.clone()],
        };
        let mut out = Vec::new();
        self.store.ingest_observed(&req, &mut |a| {
            if let Some(p) = self.settings.point(a, 0) {
                out.push(p);
            }
        });
        out
    }
}

/// Requests of at most 3 MB (the default), encoded and snappy-compressed; returns the bytes.
pub fn encode(points: Vec<PointSeries>) -> usize {
    requests(points, 3_000_000, false)
        .iter()
        .map(|r| body(&r.write).map(|b| b.len()).unwrap_or(0))
        .sum()
}
