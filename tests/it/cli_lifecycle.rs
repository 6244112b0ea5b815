//! The CLI (`validate`, `print-config`, `components`, `--version`) and the process lifecycle:
//! SIGTERM drains what was accepted, SIGHUP applies a valid config and keeps the old one when
//! the new one is invalid.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use otelgw::data::Signal;
use otelgw::testdata;

fn otelgw(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(otelgw_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn every_example_pipeline_validates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let (code, out, err) = otelgw(&["validate", "--config", path.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {err}", path.display());
            assert!(out.contains("config is valid"));
            n += 1;
        }
    }
    assert!(n >= 3, "expected several example pipelines, found {n}");
}

#[test]
fn validate_lists_every_problem_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: nope\nexporters:\n  otlp_grpc/tempo:\n    endpoint: ''\n    timeout: 10parsecs\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp_grpc/tempo, loki]\n",
    )
    .unwrap();
    let (code, _, err) = otelgw(&["validate", "--config", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    for want in [
        "receivers.otlp.protocols.grpc.endpoint: invalid listen address \"nope\"",
        "exporters.otlp_grpc/tempo.timeout:",
        "service.pipelines.traces.exporters[1]: exporter \"loki\" is not defined",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // run refuses the same config the same way
    let (code, _, err2) = otelgw(&["--config", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err2.contains("invalid configuration"), "{err2}");
    // a missing file is an error too
    let (code, _, err) = otelgw(&["validate", "--config", "/nonexistent/otelgw.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read config file"), "{err}");
}

#[test]
fn print_config_merges_files_and_redacts() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(
        &a,
        "receivers:\n  otlp:\n    protocols:\n      http:\nexporters:\n  otlphttp:\n    endpoint: http://gw:4318\n    headers:\n      authorization: Bearer ${env:OTELGW_TEST_TOKEN}\nservice:\n  pipelines:\n    logs: {receivers: [otlp], exporters: [otlphttp]}\n",
    )
    .unwrap();
    std::fs::write(&b, "exporters:\n  otlphttp:\n    compression: zstd\n").unwrap();
    let out = Command::new(otelgw_bin())
        .args([
            "print-config",
            "--config",
            a.to_str().unwrap(),
            "--config",
            b.to_str().unwrap(),
        ])
        .env("OTELGW_TEST_TOKEN", "t0ps3cret")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!text.contains("t0ps3cret"), "{text}");
    assert!(text.contains("REDACTED"), "{text}");
    assert!(text.contains("compression: zstd"), "{text}");
    assert!(text.contains("endpoint: http://gw:4318"), "{text}");
}

#[test]
fn components_and_version() {
    let (code, out, _) = otelgw(&["components"]);
    assert_eq!(code, 0);
    for t in [
        "otlp",
        "otlp_grpc",
        "otlp_http",
        "debug",
        "file",
        "health_check",
    ] {
        assert!(out.contains(t), "{out}");
    }
    let (code, out, _) = otelgw(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("otelgw "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_accepted_data_to_a_backend_that_comes_back() {
    // B is not running yet: A accepts and queues; after SIGTERM, A keeps retrying within its
    // shutdown deadline, B starts, everything arrives, A exits cleanly.
    let b_ports = Ports::new();
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n{}exporters:\n  otlp:\n    endpoint: http://127.0.0.1:{}\n    retry_on_failure:\n      initial_interval: 100ms\n      max_interval: 200ms\n      max_elapsed_time: 0\nservice:\n  shutdown_timeout: 30s\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [otlp]}}\n{}",
        ports.otlp_receiver(),
        b_ports.grpc,
        ports.telemetry()
    );
    let mut a = Gateway::start(ports, dir, &config);
    let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{}", a.grpc_port))
        .await
        .unwrap();
    for seed in 0..4 {
        client.export(testdata::traces(seed, 1, 50)).await.unwrap();
    }
    assert_eq!(a.metric("otelcol_receiver_accepted_spans", &[]), 200.0);
    assert_eq!(a.metric("otelcol_exporter_sent_spans", &[]), 0.0);
    a.signal("TERM");

    let b_dir = tempfile::tempdir().unwrap();
    let out = b_dir.path().join("b.jsonl");
    let b_config = format!(
        "receivers:\n{}exporters:\n  file:\n    path: {}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n{}",
        b_ports.otlp_receiver(),
        out.display(),
        b_ports.telemetry()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _b = tokio::task::spawn_blocking(move || Gateway::start(b_ports, b_dir, &b_config))
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let s = a.wait_exit(Duration::from_secs(30));
        (s, a.logs())
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit {:?}; log:\n{}",
        status.0,
        status.1
    );
    assert!(status.1.contains("draining"), "{}", status.1);
    // the log went to a file: plain text, no ANSI colour codes
    assert!(!status.1.contains('\u{1b}'), "{}", status.1);
    assert_eq!(count_items(&read_file_export(&out), Signal::Traces), 200);
}

#[test]
fn sighup_applies_a_valid_config_and_keeps_the_old_one_when_invalid() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let out1 = dir.path().join("one.jsonl");
    let out2 = dir.path().join("two.jsonl");
    let cfg = |out: &std::path::Path| {
        format!(
            "receivers:\n{}exporters:\n  file:\n    path: {}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n{}",
            ports.otlp_receiver(),
            out.display(),
            ports.telemetry()
        )
    };
    let (first, second) = (cfg(&out1), cfg(&out2));
    let grpc = ports.grpc;
    let gw = Gateway::start(ports, dir, &first);
    let send = |seed: u64| {
        rt.block_on(async {
            // a fresh connection each time: a reload restarts the listeners
            let mut c = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
                .await
                .unwrap();
            c.export(testdata::traces(seed, 1, 5)).await.unwrap();
        })
    };
    let spans = |p: &std::path::Path| count_items(&read_file_export(p), Signal::Traces);

    send(1);
    wait_until(
        "first span batch in one.jsonl",
        Duration::from_secs(10),
        || spans(&out1) == 5,
    );

    std::fs::write(&gw.config_path, &second).unwrap();
    gw.signal("HUP");
    wait_until("reload applied", Duration::from_secs(15), || {
        gw.logs().contains("config reloaded")
    });
    send(2);
    wait_until("second batch in two.jsonl", Duration::from_secs(10), || {
        spans(&out2) == 5
    });
    assert_eq!(spans(&out1), 5, "the old exporter no longer receives");

    std::fs::write(&gw.config_path, "receivers: [\n").unwrap();
    gw.signal("HUP");
    wait_until("invalid reload rejected", Duration::from_secs(15), || {
        gw.logs().contains("keeping the running config")
    });
    send(3);
    wait_until(
        "third batch still goes to two.jsonl",
        Duration::from_secs(10),
        || spans(&out2) == 10,
    );
    assert_eq!(
        gw.metric("otelgw_config_reloads_total", &[("result", "applied")]),
        1.0
    );
    assert_eq!(
        gw.metric("otelgw_config_reloads_total", &[("result", "rejected")]),
        1.0
    );
    assert!(gw.logs().contains("invalid yaml"), "the log says why");
}

/// `otelgw healthcheck` (the image's HEALTHCHECK: distroless has no curl) probes `/healthz` on
/// the config's admin address, and fails on a port nothing answers.
#[test]
fn healthcheck_probes_the_admin_listener_of_the_config() {
    let ports = Ports::new();
    let admin = ports.admin;
    let config = format!(
        "receivers:\n{}exporters:\n  debug: {{}}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [debug]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let gw = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    // a copy: the gateway's own dir goes with it
    let keep = tempfile::tempdir().unwrap();
    let copy = keep.path().join("config.yaml");
    std::fs::copy(&gw.config_path, &copy).unwrap();
    let cfg = copy.to_str().unwrap().to_string();
    let (code, out, err) = otelgw(&["healthcheck", "--config", &cfg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("127.0.0.1:{admin}/healthz")), "{out}");
    let (code, _, err) = otelgw(&[
        "healthcheck",
        "--url",
        &format!("http://127.0.0.1:{admin}/nope"),
    ]);
    assert_eq!(code, 1, "a 404 is unhealthy");
    assert!(err.contains("404"), "{err}");
    drop(gw);
    let (code, _, err) = otelgw(&["healthcheck", "--config", &cfg, "--timeout", "1"]);
    assert_eq!(code, 1, "nothing listens any more");
    assert!(err.contains("unhealthy"), "{err}");
}
