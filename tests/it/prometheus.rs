//! A real Prometheus 2.42 scrapes otelgw's `prometheus` exporter after the OTel Python SDK sent
//! counters, up-down counters, gauges, histograms and exponential histograms with both
//! temporalities (in two exports each, so delta points must be added up). PromQL through the
//! HTTP API returns what the SDK measured; the target is up without scrape errors; the scrape is
//! OpenMetrics with exemplars (stored with `--enable-feature=exemplar-storage`); promtool lints
//! the text-format output clean.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

#[test]
fn prometheus_scrapes_what_the_sdk_measured() {
    let prom_bin = peer("OTELGW_TEST_PROMETHEUS");
    let promtool = peer("OTELGW_TEST_PROMTOOL");
    let python = peer("OTELGW_TEST_PYTHON");
    let ports = Ports::new();
    let exp_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n{}exporters:\n  prometheus:\n    endpoint: 127.0.0.1:{exp_port}\n    enable_open_metrics: true\n    const_labels:\n      gateway: otelgw\nservice:\n  pipelines:\n    metrics: {{receivers: [otlp], exporters: [prometheus]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let gw = Gateway::start(ports, dir, &config);

    for t in ["cumulative", "delta"] {
        let out = Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/metrics.py"
            ))
            .arg(format!("127.0.0.1:{}", gw.grpc_port))
            .arg(t)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sent: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(sent["flushed"], serde_json::json!([true, true]));
    }

    // text format: promtool finds nothing to lint
    let (status, text) = http_get(&format!("127.0.0.1:{exp_port}"), "/metrics").unwrap();
    assert_eq!(status, 200);
    let mut lint = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    // a real Prometheus scrapes every second, OpenMetrics first (its default Accept)
    let (_prom, prom_port) = start_prometheus(&prom_bin, exp_port);

    for t in ["cumulative", "delta"] {
        let sel = format!("{{job=\"py/metrics-svc\",instance=\"{t}-1\",gateway=\"otelgw\"}}");
        // counters: 5 then 3; delta points are added up
        assert_eq!(prom_value(prom_port, &format!("{t}_requests_total{{route=\"/a\",otel_scope_name=\"otelgw.metrics.test\",otel_scope_version=\"2.0\"}}")), 8.0, "{t}");
        // up-down counter: 10 then -4 (a non-monotonic delta sum accumulates as well)
        assert_eq!(
            prom_value(prom_port, &format!("{t}_queue_depth{sel}")),
            6.0,
            "{t}"
        );
        // gauge with unit Cel
        assert_eq!(
            prom_value(
                prom_port,
                &format!("{t}_temperature_celsius{{room=\"lab\"}}")
            ),
            21.5,
            "{t}"
        );
        // explicit-bucket histogram: 0.05, 0.3, 0.7, 2.0
        assert_eq!(
            prom_value(prom_port, &format!("{t}_latency_seconds_count{sel}")),
            4.0,
            "{t}"
        );
        assert!(
            (prom_value(prom_port, &format!("{t}_latency_seconds_sum{sel}")) - 3.05).abs() < 1e-9,
            "{t}"
        );
        assert_eq!(
            prom_value(
                prom_port,
                &format!("{t}_latency_seconds_bucket{{le=\"0.5\",instance=\"{t}-1\"}}")
            ),
            2.0,
            "{t}"
        );
        // exponential histogram, rendered as classic buckets: nothing dropped
        assert_eq!(
            prom_value(prom_port, &format!("{t}_exp_latency_seconds_count{sel}")),
            4.0,
            "{t}"
        );
        assert_eq!(
            prom_value(
                prom_port,
                &format!("{t}_exp_latency_seconds_bucket{{le=\"+Inf\",instance=\"{t}-1\"}}")
            ),
            4.0,
            "{t}"
        );
        assert!(
            (prom_value(prom_port, &format!("{t}_exp_latency_seconds_sum{sel}")) - 3.05).abs()
                < 1e-9,
            "{t}"
        );
        // every classic bucket is exact: its cumulative count is the number of values ≤ le
        let buckets = prom_query(
            prom_port,
            &format!("{t}_exp_latency_seconds_bucket{{instance=\"{t}-1\"}}"),
        );
        let buckets = buckets["data"]["result"].as_array().unwrap().clone();
        assert!(buckets.len() >= 5, "{t}: {buckets:?}");
        for b in &buckets {
            let le = b["metric"]["le"].as_str().unwrap();
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let got: f64 = b["value"][1].as_str().unwrap().parse().unwrap();
            let want = [0.05, 0.3, 0.7, 2.0].iter().filter(|v| **v <= le).count() as f64;
            assert_eq!(got, want, "{t}: bucket le={le}");
        }
        // resource attributes other than job/instance are on target_info
        assert_eq!(
            prom_value(
                prom_port,
                &format!("target_info{{instance=\"{t}-1\",host_name=\"box\"}}")
            ),
            1.0
        );
    }

    // the target is healthy and was scraped as OpenMetrics
    assert_eq!(prom_value(prom_port, "up{job=\"otelgw\"}"), 1.0);
    let (_, targets) = http_get(&format!("127.0.0.1:{prom_port}"), "/api/v1/targets").unwrap();
    let targets: serde_json::Value = serde_json::from_str(&targets).unwrap();
    let t = &targets["data"]["activeTargets"][0];
    assert_eq!(t["health"], "up", "{t}");
    assert_eq!(t["lastError"], "", "{t}");

    // exemplars arrived with trace ids
    let mut found = serde_json::Value::Null;
    for _ in 0..50 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let path = format!(
            "/api/v1/query_exemplars?query={}&start={}&end={}",
            urlencode("cumulative_requests_total"),
            now - 600,
            now + 60
        );
        let (_, body) = http_get(&format!("127.0.0.1:{prom_port}"), &path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["data"].as_array().is_some_and(|a| !a.is_empty()) {
            found = v;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ex = &found["data"][0]["exemplars"][0];
    assert_eq!(
        ex["labels"]["trace_id"].as_str().map(str::len),
        Some(32),
        "{found}"
    );
    assert_eq!(
        ex["labels"]["span_id"].as_str().map(str::len),
        Some(16),
        "{found}"
    );
    assert!(gw.metric("otelgw_prometheus_scrapes_total", &[]) > 0.0);
}
