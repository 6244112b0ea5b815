//! Bring your Collector config: realistic configs written for this test in the shapes teams run
//! (`tests/fixtures/compat/`: the OTel demo's gateway, a secure edge, a hosted stack with basic
//! auth and per-tenant headers, a sampling node agent with a disk queue and pushed
//! self-metrics, a Prometheus endpoint with a cardinality budget, a Kubernetes node agent with
//! resource detection, uptime checks with `httpcheck`, noise control with `filter` and
//! `transform`, pipelines joined with `forward` and counted with `count`, the demo with `spanmetrics` and `hostmetrics`, a Prometheus agent replaced by the `prometheus` receiver and remote write, the Helm chart's pod-logs collection with `filelog`, a two-tier first tier with `loadbalancing`) validate with the release CLI
//! with zero errors. The environment is set as in a deployment, including a numeric instance id
//! behind a quoted `${env:…}` (a string field the Collector accepts it in).

use std::process::Command;

use crate::common::*;

#[test]
fn realistic_collector_configs_validate_unchanged() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/compat");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let mut failures = Vec::new();
    for f in &files {
        let out = Command::new(otelgw_bin())
            .arg("validate")
            .arg("--config")
            .arg(f)
            .env("GRAFANA_CLOUD_INSTANCE_ID", "123456")
            .env("GRAFANA_CLOUD_API_KEY", "glc_not_a_real_key")
            .env("MY_POD_IP", "10.0.0.7")
            .env("K8S_POD_IP", "10.0.0.8")
            .env("K8S_NODE_NAME", "node-a")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || text.contains("error:") {
            failures.push(format!("{}:\n{text}", f.display()));
        }
        assert!(
            !text.contains("glc_not_a_real_key"),
            "a secret was printed: {text}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
