use super::*;

fn parse(yaml: &str) -> Result<PrometheusReceiverConfig, String> {
    serde_norway::from_str(yaml).map_err(|e| e.to_string())
}

fn errors(yaml: &str) -> Vec<String> {
    let c = parse(yaml).unwrap();
    let mut diag = Diagnostics::default();
    c.validate("receivers.prometheus", &mut diag);
    diag.errors.iter().map(|e| e.to_string()).collect()
}

#[test]
fn a_collector_config_parses_with_prometheus_defaults() {
    let c = parse(
        "config:\n  global: {scrape_interval: 15s}\n  scrape_configs:\n    - job_name: otel-collector\n      scrape_interval: 10s\n      static_configs:\n        - targets: ['0.0.0.0:8888']\n    - job_name: node\n      file_sd_configs: [{files: [/etc/sd/*.json]}]\n      metric_relabel_configs:\n        - {source_labels: [__name__], regex: 'go_.*', action: drop}\n",
    )
    .unwrap();
    let g = &c.config.global;
    let a = &c.config.scrape_configs[0];
    assert_eq!(a.interval(g), std::time::Duration::from_secs(10));
    assert_eq!(a.timeout(g), std::time::Duration::from_secs(10));
    assert_eq!(
        (a.metrics_path.as_str(), a.scheme.as_str()),
        ("/metrics", "http")
    );
    assert!(a.honor_timestamps && !a.honor_labels);
    let b = &c.config.scrape_configs[1];
    assert_eq!(b.interval(g), std::time::Duration::from_secs(15));
    assert_eq!(
        b.file_sd_configs[0].refresh_interval.get(),
        std::time::Duration::from_secs(300)
    );
    assert_eq!(b.body_size_limit.0, 50 * 1024 * 1024);
    let mut diag = Diagnostics::default();
    c.validate("r", &mut diag);
    assert!(diag.errors.is_empty(), "{:?}", diag.errors);
}

#[test]
fn unknown_prometheus_keys_are_errors_naming_the_key() {
    for (yaml, key) in [
        (
            "config:\n  scrape_configs:\n    - job_name: a\n      kubernetes_sd_configs: [{role: pod}]\n",
            "kubernetes_sd_configs",
        ),
        ("config:\n  remote_write: [{url: x}]\n", "remote_write"),
        (
            "config:\n  scrape_configs:\n    - job_name: a\n      relabel_configs: [{action: replace, sourcelabels: [a]}]\n",
            "sourcelabels",
        ),
    ] {
        let e = parse(yaml).unwrap_err();
        assert!(e.contains(key), "{key}: {e}");
    }
}

#[test]
fn every_problem_is_reported_at_its_path() {
    let e = errors(
        "target_allocator: {endpoint: x}\nconfig:\n  scrape_configs:\n    - job_name: a\n      scheme: ftp\n      metrics_path: metrics\n      scrape_interval: 5s\n      scrape_timeout: 10s\n      static_configs: [{targets: ['http://x:1/metrics']}]\n      relabel_configs: [{action: hashmod, source_labels: [a], target_label: b}]\n    - job_name: a\n      basic_auth: {username: u, password: p, password_file: f}\n      authorization: {credentials: c}\n",
    );
    let want = [
        "receivers.prometheus.target_allocator",
        "receivers.prometheus.config.scrape_configs[0].scheme",
        "receivers.prometheus.config.scrape_configs[0].metrics_path",
        "receivers.prometheus.config.scrape_configs[0].scrape_timeout",
        "receivers.prometheus.config.scrape_configs[0].static_configs[0].targets[0]",
        "receivers.prometheus.config.scrape_configs[0].relabel_configs[0].modulus",
        "receivers.prometheus.config.scrape_configs[1].job_name",
        "receivers.prometheus.config.scrape_configs[1].basic_auth",
        "receivers.prometheus.config.scrape_configs[1]: no targets",
        "receivers.prometheus.config.scrape_configs[1]: set basic_auth or authorization",
    ];
    for w in want {
        assert!(e.iter().any(|x| x.starts_with(w)), "{w} missing in {e:#?}");
    }
    assert!(errors("config: {}\n")
        .iter()
        .any(|x| x.contains("at least one scrape config")));
}
