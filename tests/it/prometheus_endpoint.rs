//! The Prometheus endpoint itself: TLS (rustls, a private CA), gzip and content negotiation,
//! and series expiry on a timer of its own — without any scrape in between, the store (not just
//! the output) empties.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use otelgw::testdata;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_gzip_negotiation_and_expiry_without_scrapes() {
    let certdir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certs(certdir.path());
    let ports = Ports::new();
    let (tls_port, plain_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n{}exporters:\n  prometheus/tls:\n    endpoint: 127.0.0.1:{tls_port}\n    enable_open_metrics: true\n    tls: {{cert_file: {cert}, key_file: {key}}}\n  prometheus/expiring:\n    endpoint: 127.0.0.1:{plain_port}\n    metric_expiration: 500ms\nservice:\n  pipelines:\n    metrics: {{receivers: [otlp], exporters: [prometheus/tls, prometheus/expiring]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let gw = Gateway::start(ports, dir, &config);
    MetricsServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap()
        .export(testdata::metrics(1, 1, 3))
        .await
        .unwrap();

    // TLS with the private CA; OpenMetrics when asked; gzip when accepted
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{tls_port}/metrics");
    let mut body = String::new();
    for _ in 0..50 {
        let r = client
            .get(&url)
            .header("accept", "application/openmetrics-text; version=1.0.0")
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"));
        assert_eq!(r.headers()["content-encoding"], "gzip");
        let z = r.bytes().await.unwrap();
        body.clear();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_string(&mut body)
            .unwrap();
        if body.contains("http_server_requests_total") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        body.contains("# TYPE http_server_requests counter"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let plain = reqwest::get(format!("http://127.0.0.1:{tls_port}/metrics")).await;
    assert!(
        plain.is_err() || plain.unwrap().status().as_u16() != 200,
        "plaintext is not served on the TLS port"
    );
    let text = reqwest::get(format!("http://127.0.0.1:{plain_port}/metrics"))
        .await
        .unwrap();
    assert!(text.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));

    // expiry: no scrape of the expiring endpoint from here on; its store empties by itself
    let labels = [("exporter", "prometheus/expiring")];
    assert!(gw.metric("otelgw_prometheus_series", &labels) > 0.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.metric("otelgw_prometheus_series", &labels) > 0.0 {
        assert!(Instant::now() < deadline, "series never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gw.metric("otelgw_prometheus_expired_series_total", &labels) > 0.0);
    assert_eq!(
        gw.metric("otelgw_prometheus_scrapes_total", &labels),
        1.0,
        "only the one content-type check above scraped it"
    );
    let after = reqwest::get(format!("http://127.0.0.1:{plain_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!after.contains("http_server_requests"), "{after}");
    // the other exporter's series are untouched (default expiration 5m)
    assert!(
        gw.metric(
            "otelgw_prometheus_series",
            &[("exporter", "prometheus/tls")]
        ) > 0.0
    );
}
