//! The deployment files (`deploy/`), checked without a Docker engine or a cluster: each test runs
//! one subcommand of `tests/deploy/check.py` (see its docstring for what each verifies) with the
//! deploy venv's Python (kubernetes-validate, hadolint, pyyaml) and the binary under test; and
//! the container image, built with podman and run from its root filesystem
//! (`tests/deploy/image.sh`).

use std::process::Command;

use crate::common::*;

fn check(subcommand: &str) {
    let python = peer("OTELGW_TEST_PYTHON_DEPLOY");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deploy/check.py");
    let mut cmd = Command::new(&python);
    cmd.arg(script)
        .arg(subcommand)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OTELGW_BIN", otelgw_bin());
    if subcommand == "dashboard" {
        cmd.env("OTELGW_TEST_PROMETHEUS", peer("OTELGW_TEST_PROMETHEUS"))
            .env("OTELGW_TEST_PROMTOOL", peer("OTELGW_TEST_PROMTOOL"))
            .env("OTELGW_TEST_PYTHON", peer("OTELGW_TEST_PYTHON"));
    }
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "check.py {subcommand} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[test]
fn deploy_configs_validate() {
    check("configs");
}

#[test]
fn deploy_k8s_manifests() {
    check("k8s");
}

#[test]
fn deploy_dockerfile_lint() {
    check("dockerfile");
}

#[test]
fn deploy_compose_stack() {
    check("compose");
}

#[test]
fn deploy_dashboard_and_alert_rules() {
    check("dashboard");
}

/// The image: built by podman from the static binary (`OTELGW_STATIC_BIN`, which `tests/run.sh`
/// builds with `tests/deploy/build-static.sh`; built here when unset), inspected, and its exact
/// entrypoint run from its root filesystem: it passes its own HEALTHCHECK and accepts OTLP.
#[test]
fn deploy_image_builds_inspects_and_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let bin = match std::env::var("OTELGW_STATIC_BIN") {
        Ok(b) if !b.is_empty() => b,
        _ => {
            let out = Command::new(format!("{root}/tests/deploy/build-static.sh"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "build-static.sh: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    let output = Command::new(format!("{root}/tests/deploy/image.sh"))
        .arg(&bin)
        .current_dir(root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "image.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("image: ok"), "{stdout}");
}
