//! The `httpcheck` receiver in a running gateway: every second it checks a live local server
//! answering 200 (GET, with a configured header), one answering 503 (POST) and a port nothing
//! listens on (connection refused), into a metrics pipeline with a `file` exporter. Each
//! collection delivers the Collector's three metrics with their units, types and attributes:
//! `httpcheck.status` 1 for the answer's class only (status code 0 and all classes 0 for the
//! dead port), `httpcheck.error` 1 for the dead port only, `httpcheck.duration` for all three;
//! collections repeat at the interval with one start time; the points are counted as a
//! scraper's; SIGTERM stops it promptly.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point, Metric};
use otelgw::data::Telemetry;

/// One point: its attributes as text (`int:` before integers), value, start and time.
#[derive(Debug, Clone)]
struct Point {
    attrs: BTreeMap<String, String>,
    value: i64,
    start: u64,
    time: u64,
}

/// The points of one metric, checking its unit and type as the Collector's metadata has them.
fn points(m: &Metric) -> Vec<Point> {
    let dps = match (m.name.as_str(), m.data.as_ref().unwrap()) {
        ("httpcheck.duration", Data::Gauge(g)) => {
            assert_eq!(m.unit, "ms");
            &g.data_points
        }
        ("httpcheck.error" | "httpcheck.status", Data::Sum(s)) => {
            assert_eq!(
                m.unit,
                if m.name == "httpcheck.error" {
                    "{error}"
                } else {
                    "1"
                }
            );
            assert!(!s.is_monotonic, "{}: not monotonic", m.name);
            assert_eq!(s.aggregation_temporality, 2, "{}: cumulative", m.name);
            &s.data_points
        }
        (name, data) => panic!("unexpected metric {name}: {data:?}"),
    };
    dps.iter()
        .map(|p| Point {
            attrs: p
                .attributes
                .iter()
                .map(|kv| {
                    let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(Any::StringValue(s)) => s.clone(),
                        Some(Any::IntValue(i)) => format!("int:{i}"),
                        other => panic!("attribute {}: {other:?}", kv.key),
                    };
                    (kv.key.clone(), v)
                })
                .collect(),
            value: match p.value {
                Some(number_data_point::Value::AsInt(v)) => v,
                other => panic!("{}: not an int point: {other:?}", m.name),
            },
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
        })
        .collect()
}

/// One collection: metric name → points.
fn collection(req: &ExportMetricsServiceRequest) -> BTreeMap<String, Vec<Point>> {
    assert_eq!(req.resource_metrics.len(), 1);
    let sm = &req.resource_metrics[0].scope_metrics;
    assert_eq!(sm.len(), 1);
    assert!(sm[0]
        .scope
        .as_ref()
        .unwrap()
        .name
        .ends_with("/receiver/httpcheckreceiver"));
    sm[0]
        .metrics
        .iter()
        .map(|m| (m.name.clone(), points(m)))
        .collect()
}

/// `httpcheck.status` for one URL: (code, method, class → value).
fn status_of(points: &[Point], url: &str) -> (String, String, BTreeMap<String, i64>) {
    let mine: Vec<&Point> = points
        .iter()
        .filter(|p| p.attrs["http.url"] == url)
        .collect();
    assert_eq!(mine.len(), 5, "one point per status class for {url}");
    for p in &mine {
        let keys: Vec<&str> = p.attrs.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "http.method",
                "http.status_class",
                "http.status_code",
                "http.url"
            ]
        );
    }
    (
        mine[0].attrs["http.status_code"].clone(),
        mine[0].attrs["http.method"].clone(),
        mine.iter()
            .map(|p| (p.attrs["http.status_class"].clone(), p.value))
            .collect(),
    )
}

fn classes(hot: Option<&str>) -> BTreeMap<String, i64> {
    ["1xx", "2xx", "3xx", "4xx", "5xx"]
        .into_iter()
        .map(|c| (c.to_string(), i64::from(Some(c) == hot)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_live_failing_and_dead_urls_every_interval() {
    let up = Backend::start(Script::always(Reply::status(200).body("ok"))).await;
    let down = Backend::start(Script::always(Reply::status(503))).await;
    let dead = free_port(); // nothing listens here
    let up_url = format!("http://127.0.0.1:{}/health", up.port);
    let down_url = format!("http://127.0.0.1:{}/ready", down.port);
    let dead_url = format!("http://127.0.0.1:{dead}/");

    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("checks.jsonl");
    let config = format!(
        "receivers:\n  httpcheck:\n    collection_interval: 1s\n    initial_delay: 0s\n    timeout: 5s\n    targets:\n      - endpoint: {up_url}\n        headers: {{X-Check: otelgw}}\n      - method: POST\n        endpoints: [{down_url}, {dead_url}]\nexporters:\n  file:\n    path: {}\nservice:\n  pipelines:\n    metrics: {{receivers: [httpcheck], exporters: [file]}}\n{}",
        out.display(),
        ports.telemetry()
    );
    let mut gw = Gateway::start(ports, dir, &config);

    let o = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(
            "three collections in the file",
            Duration::from_secs(30),
            || read_file_export(&o).len() >= 3,
        )
    })
    .await
    .unwrap();

    let collections: Vec<BTreeMap<String, Vec<Point>>> = read_file_export(&out)
        .iter()
        .map(|t| match t {
            Telemetry::Metrics(r) => collection(r),
            other => panic!("not metrics: {other:?}"),
        })
        .collect();
    let start = collections[0]["httpcheck.duration"][0].start;
    let mut times = Vec::new();
    for c in &collections {
        let names: Vec<&str> = c.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["httpcheck.duration", "httpcheck.error", "httpcheck.status"]
        );

        let status = &c["httpcheck.status"];
        assert_eq!(status.len(), 15);
        assert_eq!(
            status_of(status, &up_url),
            ("int:200".into(), "GET".into(), classes(Some("2xx")))
        );
        assert_eq!(
            status_of(status, &down_url),
            ("int:503".into(), "POST".into(), classes(Some("5xx")))
        );
        assert_eq!(
            status_of(status, &dead_url),
            ("int:0".into(), "POST".into(), classes(None))
        );

        let errors = &c["httpcheck.error"];
        assert_eq!(
            errors.len(),
            1,
            "only the dead port is an error: {errors:?}"
        );
        assert_eq!(errors[0].attrs["http.url"], dead_url);
        assert_eq!(errors[0].value, 1);
        let message = errors[0].attrs["error.message"].to_lowercase();
        assert!(message.contains("connection refused"), "{message}");
        assert_eq!(errors[0].attrs.len(), 2);

        let durations = &c["httpcheck.duration"];
        let mut urls: Vec<&str> = durations
            .iter()
            .map(|p| p.attrs["http.url"].as_str())
            .collect();
        urls.sort_unstable();
        let mut want = [up_url.as_str(), down_url.as_str(), dead_url.as_str()];
        want.sort_unstable();
        assert_eq!(urls, want);
        for p in durations {
            assert_eq!(p.attrs.len(), 1);
            assert!((0..5_000).contains(&p.value), "duration {} ms", p.value);
        }

        // start: the receiver's start, the same for every point; time: this collection's
        for p in c.values().flatten() {
            assert_eq!(p.start, start);
            assert!(p.time >= start);
        }
        times.push(c.values().flatten().map(|p| p.time).min().unwrap());
    }
    // one collection per interval (1s), generously bounded
    for pair in times.windows(2) {
        let gap = Duration::from_nanos(pair[1] - pair[0]);
        assert!(
            gap >= Duration::from_millis(500) && gap <= Duration::from_secs(10),
            "collections {gap:?} apart"
        );
    }

    // the servers saw the configured requests, once per collection
    let n = collections.len();
    let got = up.requests();
    assert!(got.len() >= n, "{} requests for {n} collections", got.len());
    assert!(got.iter().all(|r| r.method == http::Method::GET
        && r.path == "/health"
        && r.header("x-check").as_deref() == Some("otelgw")));
    assert!(down
        .requests()
        .iter()
        .all(|r| r.method == http::Method::POST && r.path == "/ready"));

    // counted as the Collector counts a scraper's points: 3 durations, 1 error, 15 statuses
    let labels = [("receiver", "httpcheck")];
    let accepted = gw.metric("otelcol_receiver_accepted_metric_points", &labels);
    let scraped = gw.metric("otelcol_scraper_scraped_metric_points", &labels);
    assert!(accepted >= (19 * n) as f64, "accepted {accepted}");
    assert_eq!(accepted % 19.0, 0.0, "accepted {accepted}");
    assert!(
        scraped >= accepted,
        "scraped {scraped}, accepted {accepted}"
    );

    let status = tokio::task::spawn_blocking(move || {
        let begun = std::time::Instant::now();
        let status = gw.stop();
        (status, begun.elapsed(), gw.logs())
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit {:?}; log:\n{}",
        status.0,
        status.2
    );
    assert!(
        status.1 < Duration::from_secs(10),
        "stopped in {:?}",
        status.1
    );
}
