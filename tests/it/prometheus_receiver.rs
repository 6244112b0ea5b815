//! The `prometheus` receiver against real targets and a real Prometheus 2.42: a Python
//! `prometheus_client` target serving every metric type (OpenMetrics, exemplars, `_created`,
//! a counter reset and a series that disappears, driven by a state file), Debian's
//! `prometheus-node-exporter`, and Prometheus' own `/metrics`. Prometheus scrapes the targets
//! itself and also receives what otelgw scraped by remote write (`path="otelgw"`); PromQL over
//! both must agree. Faults (a target that hangs, serves garbage or 60 MB) use the stand-in
//! backend, with the results read from otelgw's own Prometheus endpoint.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command) -> Proc {
    Proc(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Labels with `le` / `quantile` as numbers written one way (clients write `1.0`, otelgw
/// `1`), without `path` and otelgw's scope labels.
type Series = BTreeMap<BTreeMap<String, String>, f64>;

fn series(prom_port: u16, q: &str) -> Series {
    let r = prom_query(prom_port, q);
    r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(s["metric"].clone()).unwrap();
            for k in ["path", "otel_scope_name", "otel_scope_version"] {
                labels.remove(k);
            }
            for k in ["le", "quantile"] {
                if let Some(v) = labels.get_mut(k) {
                    if let Ok(f) = v.parse::<f64>() {
                        *v = format!("{f}");
                    }
                }
            }
            let v: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
            (labels, v)
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

/// Waits (bounded) until every series of `name` Prometheus scraped from `job` itself is also
/// among those otelgw scraped and remote-wrote (`path="otelgw"`), with the same labels and, if
/// `values`, the same value.
fn agree(prom_port: u16, name: &str, job: &str, values: bool) {
    let q = format!("{name}{{job=\"{job}\",path=\"\"}}");
    let direct_q = q.clone();
    let otelgw_q = format!("{name}{{job=\"{job}\",path=\"otelgw\"}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let direct = series(prom_port, &direct_q);
        let via = series(prom_port, &otelgw_q);
        let missing: Vec<_> = direct
            .iter()
            .filter(|(k, v)| match via.get(*k) {
                None => true,
                Some(w) => values && !close(**v, *w),
            })
            .collect();
        if !direct.is_empty() && missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{q}: {} of {} direct series missing or different in otelgw's: {missing:#?}\notelgw has {via:#?}",
            missing.len(),
            direct.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn otelgw_scrapes_what_prometheus_scrapes() {
    let prom_bin = peer("OTELGW_TEST_PROMETHEUS");
    let node_bin = peer("OTELGW_TEST_NODE_EXPORTER");
    let python = peer("OTELGW_TEST_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(
        &state,
        r#"{"jobs": 10, "rooms": {"lab": 21.5, "attic": 12}}"#,
    )
    .unwrap();
    let (py_port, node_port) = (free_port(), free_port());
    let _py = spawn(
        Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/prom_target.py"
            ))
            .arg(py_port.to_string())
            .arg(&state),
    );
    let _node = spawn(Command::new(&node_bin).args([
        format!("--web.listen-address=127.0.0.1:{node_port}"),
        "--collector.disable-defaults".into(),
        "--collector.meminfo".into(),
        "--collector.uname".into(),
        "--collector.filesystem".into(),
        "--collector.cpu".into(),
    ]));
    let jobs = format!(
        "  - job_name: py\n    static_configs: [{{targets: ['127.0.0.1:{py_port}']}}]\n  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{node_port}']}}]\n  - job_name: prometheus\n    static_configs: [{{targets: ['{{self}}']}}]\n"
    );
    let (_prom, prom_port) =
        start_prometheus_with(&prom_bin, &jobs, &["--web.enable-remote-write-receiver"]);
    let ports = Ports::new();
    let gw_dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n  prometheus:\n    config:\n      global: {{scrape_interval: 1s}}\n      scrape_configs:\n{}        - job_name: relabeled\n          static_configs: [{{targets: ['127.0.0.1:{py_port}'], labels: {{team: a}}}}]\n          metric_relabel_configs:\n            - {{source_labels: [__name__], regex: 'room_temperature_celsius', action: drop}}\n            - {{source_labels: [__name__], regex: 'http_requests_total', target_label: __name__, replacement: renamed_requests_total}}\nexporters:\n  prometheusremotewrite:\n    endpoint: http://127.0.0.1:{prom_port}/api/v1/write\n    external_labels: {{path: otelgw}}\n    export_created_metric: {{enabled: true}}\n    target_info: {{enabled: false}}\nservice:\n  pipelines:\n    metrics: {{receivers: [prometheus], exporters: [prometheusremotewrite]}}\n{}",
        jobs.replace("{self}", &format!("127.0.0.1:{prom_port}"))
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>(),
        ports.telemetry()
    );
    let gw = Gateway::start(ports, gw_dir, &config);

    // every series of the Python target, values included: counters, `_created`, histograms,
    // summaries, info, stateset, exemplar-carrying buckets
    for q in [
        "jobs_processed_total",
        "jobs_processed_created",
        "http_requests_total",
        "http_requests_created",
        "request_latency_seconds_bucket",
        "request_latency_seconds_sum",
        "request_latency_seconds_count",
        "request_latency_seconds_created",
        "payload_bytes_sum",
        "payload_bytes_count",
        "build_info",
        "worker_state",
        "room_temperature_celsius",
    ] {
        agree(prom_port, q, "py", true);
    }
    // the scrape's own series, as Prometheus writes them
    agree(prom_port, "up", "py", true);
    agree(prom_port, "scrape_samples_scraped", "py", true);
    // node_exporter: constant values equal, counters present with the same labels
    for q in [
        "node_memory_MemTotal_bytes",
        "node_uname_info",
        "node_filesystem_size_bytes",
    ] {
        agree(prom_port, q, "node", true);
    }
    agree(prom_port, "node_cpu_seconds_total", "node", false);
    // Prometheus' own page
    agree(prom_port, "prometheus_build_info", "prometheus", true);
    agree(prom_port, "up", "prometheus", true);

    // metric relabeling dropped one family and renamed another; target labels are on
    assert_eq!(
        prom_value(
            prom_port,
            "renamed_requests_total{job=\"relabeled\",team=\"a\",code=\"200\"}"
        ),
        7.0
    );
    // the scrape's own series carry the target's labels, as Prometheus' do
    assert_eq!(
        prom_value(
            prom_port,
            "up{job=\"relabeled\",team=\"a\",path=\"otelgw\"}"
        ),
        1.0
    );
    assert!(
        prom_query(prom_port, "room_temperature_celsius{job=\"relabeled\"}")["data"]["result"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // a counter reset and a series that disappears: both paths see the same
    std::fs::write(&state, r#"{"jobs": 3, "rooms": {"lab": 22}}"#).unwrap();
    wait_until("the reset reached both", Duration::from_secs(30), || {
        ["", "otelgw"].iter().all(|path| {
            let r = series(
                prom_port,
                &format!("resets(jobs_processed_total{{job=\"py\",path=\"{path}\"}}[5m])"),
            );
            r.len() == 1 && r.values().all(|v| *v == 1.0)
        })
    });
    wait_until("attic went stale on both", Duration::from_secs(30), || {
        series(
            prom_port,
            "room_temperature_celsius{job=\"py\",room=\"attic\"}",
        )
        .is_empty()
    });
    agree(prom_port, "jobs_processed_total", "py", true);

    // the scrape was negotiated as OpenMetrics: exemplars arrived by remote write
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let path = format!(
        "/api/v1/query_exemplars?query={}&start={}&end={}",
        urlencode("http_requests_total{path=\"otelgw\"}"),
        now - 600,
        now + 60
    );
    wait_until("exemplars via otelgw", Duration::from_secs(20), || {
        let (_, body) = http_get(&format!("127.0.0.1:{prom_port}"), &path).unwrap();
        body.contains("0af7651916cd43dd8448eb211c80319c")
    });
    assert!(
        gw.metric(
            "otelgw_prometheus_receiver_scrapes_total",
            &[("job", "py"), ("result", "success")]
        ) >= 2.0
    );
    assert_eq!(
        gw.metric(
            "otelgw_prometheus_receiver_scrapes_total",
            &[("job", "py"), ("result", "failed")]
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_targets_are_down_with_a_reason_and_never_block_the_others() {
    let good = Backend::start(Script::always(
        Reply::status(200)
            .header("content-type", "text/plain; version=0.0.4")
            .body("# TYPE ok_total counter\nok_total 5\n"),
    ))
    .await;
    let hang =
        Backend::start(Script::always(Reply::status(200)).slow(Duration::from_secs(20))).await;
    let garbage = Backend::start(Script::always(
        Reply::status(200)
            .header("content-type", "text/plain")
            .body("this is {not prometheus\n"),
    ))
    .await;
    let huge = Backend::start(Script::always(Reply::status(200).body(vec![
        b'#';
        60 * 1024
            * 1024
    ])))
    .await;
    let ports = Ports::new();
    let exp_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n  prometheus:\n    config:\n      global: {{scrape_interval: 1s, scrape_timeout: 500ms}}\n      scrape_configs:\n        - job_name: mixed\n          static_configs: [{{targets: ['127.0.0.1:{}', '127.0.0.1:{}', '127.0.0.1:{}', '127.0.0.1:{}']}}]\nexporters:\n  prometheus:\n    endpoint: 127.0.0.1:{exp_port}\nservice:\n  pipelines:\n    metrics: {{receivers: [prometheus], exporters: [prometheus]}}\n{}",
        good.port,
        hang.port,
        garbage.port,
        huge.port,
        ports.telemetry()
    );
    let gw = Gateway::start(ports, dir, &config);
    let up = |port: u16| {
        let (_, text) = http_get(&format!("127.0.0.1:{exp_port}"), "/metrics").unwrap_or_default();
        let inst = format!("127.0.0.1:{port}");
        text.lines()
            .find(|l| l.starts_with("up{") && l.contains(&format!("instance=\"{inst}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    wait_until("every target reported", Duration::from_secs(30), || {
        [good.port, hang.port, garbage.port, huge.port]
            .iter()
            .all(|p| up(*p).is_some())
    });
    // the good target keeps being scraped on time while the others fail
    let scrapes_before = good.count();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        good.count() >= scrapes_before + 2,
        "the good target was held up"
    );
    assert_eq!(up(good.port), Some(1.0));
    for p in [hang.port, garbage.port, huge.port] {
        assert_eq!(up(p), Some(0.0), "target {p}");
    }
    let (_, text) = http_get(&format!("127.0.0.1:{exp_port}"), "/metrics").unwrap();
    assert!(text.contains("ok_total{"), "{text}");
    let logs = gw.logs();
    for reason in ["scrape timed out", "line 1", "body size limit exceeded"] {
        assert!(logs.contains(reason), "{reason} missing in logs:\n{logs}");
    }
    // each failure is logged once, not every interval
    assert_eq!(
        logs.matches("body size limit exceeded").count(),
        1,
        "{logs}"
    );
    assert!(
        gw.metric(
            "otelgw_prometheus_receiver_scrapes_total",
            &[("job", "mixed"), ("result", "failed")]
        ) >= 6.0
    );
}

/// `up` per instance from an otelgw `prometheus` exporter's page.
fn up_of(exp_port: u16) -> BTreeMap<String, f64> {
    let (_, text) = http_get(&format!("127.0.0.1:{exp_port}"), "/metrics").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("up{"))
        .filter_map(|l| {
            let inst = l
                .split("instance=\"")
                .nth(1)?
                .split('"')
                .next()?
                .to_string();
            let v = l.rsplit(' ').next()?.parse().ok()?;
            Some((inst, v))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_changes_move_the_scrapes_and_the_old_target_goes_stale() {
    let page = || {
        Script::always(
            Reply::status(200)
                .header("content-type", "text/plain; version=0.0.4")
                .body("# TYPE hits_total counter\nhits_total 1\n"),
        )
    };
    let (a, b) = (Backend::start(page()).await, Backend::start(page()).await);
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("targets.json");
    let write = |port: u16| {
        // written whole, then renamed: a reader never sees half a file
        let tmp = dir.path().join("next.tmp");
        std::fs::write(
            &tmp,
            format!(r#"[{{"targets": ["127.0.0.1:{port}"], "labels": {{"team": "t"}}}}]"#),
        )
        .unwrap();
        std::fs::rename(&tmp, &sd).unwrap();
    };
    write(a.port);
    let ports = Ports::new();
    let exp_port = free_port();
    let config = format!(
        "receivers:\n  prometheus:\n    config:\n      scrape_configs:\n        - job_name: sd\n          scrape_interval: 300ms\n          scrape_timeout: 300ms\n          file_sd_configs: [{{files: ['{}/*.json'], refresh_interval: 200ms}}]\nexporters:\n  prometheus:\n    endpoint: 127.0.0.1:{exp_port}\nservice:\n  pipelines:\n    metrics: {{receivers: [prometheus], exporters: [prometheus]}}\n{}",
        dir.path().display(),
        ports.telemetry()
    );
    let gw_dir = tempfile::tempdir().unwrap();
    let _gw = Gateway::start(ports, gw_dir, &config);
    let (ia, ib) = (
        format!("127.0.0.1:{}", a.port),
        format!("127.0.0.1:{}", b.port),
    );
    wait_until("target a scraped", Duration::from_secs(20), || {
        up_of(exp_port).get(&ia) == Some(&1.0)
    });
    // the file now names b: b is scraped, a stops being scraped and its series end
    // (staleness removes them from the exporter)
    write(b.port);
    wait_until("b scraped and a gone", Duration::from_secs(20), || {
        let up = up_of(exp_port);
        up.get(&ib) == Some(&1.0) && !up.contains_key(&ia)
    });
    let (_, text) = http_get(&format!("127.0.0.1:{exp_port}"), "/metrics").unwrap();
    // (target_info, made by the exporter from the resource, lives until metric_expiration)
    let left: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&format!("instance=\"{ia}\"")) && !l.starts_with("target_info"))
        .collect();
    assert!(left.is_empty(), "a's series are stale: {left:?}");
    let a_scrapes = a.count();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.count(), a_scrapes, "a is no longer scraped");
    assert!(b.count() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_pipeline_fails_the_scrape_for_that_reason_and_nothing_piles_up() {
    let target = Backend::start(Script::always(
        Reply::status(200)
            .header("content-type", "text/plain; version=0.0.4")
            .body("# TYPE hits_total counter\nhits_total 1\n"),
    ))
    .await;
    // the exporter's peer never answers and its queue holds one batch: later scrapes are
    // refused by the pipeline
    let dead = free_port();
    let ports = Ports::new();
    let config = format!(
        "receivers:\n  prometheus:\n    config:\n      scrape_configs:\n        - job_name: bp\n          scrape_interval: 200ms\n          scrape_timeout: 200ms\n          static_configs: [{{targets: ['127.0.0.1:{}']}}]\nexporters:\n  otlp:\n    endpoint: 127.0.0.1:{dead}\n    tls: {{insecure: true}}\n    sending_queue: {{queue_size: 1, num_consumers: 1, block_on_overflow: false}}\n    retry_on_failure: {{initial_interval: 5s, max_interval: 5s, max_elapsed_time: 0s}}\nservice:\n  pipelines:\n    metrics: {{receivers: [prometheus], exporters: [otlp]}}\n{}",
        target.port,
        ports.telemetry()
    );
    let gw_dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(ports, gw_dir, &config);
    wait_until("refused scrapes counted", Duration::from_secs(20), || {
        gw.metric(
            "otelgw_prometheus_receiver_scrapes_total",
            &[("job", "bp"), ("result", "refused")],
        ) >= 3.0
    });
    // the scraping goes on at its interval, and nothing beyond the queue's one batch is held
    let before = target.count();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(target.count() >= before + 3, "scrapes continue on schedule");
    assert_eq!(
        gw.metric("otelcol_exporter_queue_size", &[("exporter", "otlp")]),
        1.0
    );
    assert!(gw.logs().contains("did not take this scrape"));
}
