//! zpages read the way a person reads them: Debian's Chromium, headless, loads the pages from
//! the release binary and the test reads the DOM Chromium rendered (`--dump-dom`), before and
//! after traffic, so the numbers shown are live.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use prost::Message;

/// The DOM Chromium rendered for `url`.
fn render(url: &str) -> String {
    let chromium = peer("OTELGW_TEST_CHROMIUM");
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--timeout=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The number inside `<span class="{class}">…</span>` in the pipeline section named `pipeline`.
fn shown(dom: &str, pipeline: &str, class: &str) -> Option<u64> {
    let section = dom.split(&format!("pipeline {pipeline}</h2>")).nth(1)?;
    let section = section.split("<h2>").next()?;
    let after = section.split(&format!("<span class=\"{class}\">")).nth(1)?;
    after.split('<').next()?.trim().parse().ok()
}

#[test]
fn zpages_render_in_chromium_with_live_counts() {
    let ports = Ports::new();
    let z = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let config = format!(
        r#"extensions:
  zpages: {{endpoint: "127.0.0.1:{z}"}}
  health_check: {{endpoint: "127.0.0.1:{h}"}}
receivers:
{recv}processors:
  batch: {{timeout: 50ms}}
exporters:
  file: {{path: {out}}}
service:
  extensions: [zpages]
  pipelines:
    traces/web: {{receivers: [otlp], processors: [batch], exporters: [file]}}
{tel}"#,
        h = free_port(),
        recv = ports.otlp_receiver(),
        out = out.display(),
        tel = ports.telemetry()
    );
    let gw = Gateway::start(ports, dir, &config);
    let base = format!("http://127.0.0.1:{z}");

    let servicez = render(&format!("{base}/debug/servicez"));
    assert!(servicez.contains("<h1>otelgw service</h1>"), "{servicez}");
    assert!(servicez.contains(env!("CARGO_PKG_VERSION")));
    let extensionz = render(&format!("{base}/debug/extensionz"));
    assert!(extensionz.contains("zpages") && extensionz.contains("running"));
    assert!(
        extensionz.contains("health_check") && extensionz.contains("not in service.extensions")
    );

    let before = render(&format!("{base}/debug/pipelinez"));
    assert_eq!(
        shown(&before, "traces/web", "accepted"),
        Some(0),
        "{before}"
    );
    assert!(before.contains("batch") && before.contains("file"));

    let client = reqwest::blocking::Client::new();
    for seed in 0..3 {
        let status = client
            .post(format!("http://127.0.0.1:{}/v1/traces", gw.http_port))
            .header("content-type", "application/x-protobuf")
            .body(otelgw::testdata::traces(seed, 2, 5).encode_to_vec())
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    wait_until("the spans exported", Duration::from_secs(10), || {
        count_items(&read_file_export(&out), otelgw::data::Signal::Traces) == 30
    });
    let mut after = String::new();
    wait_until(
        "zpages show the new counts",
        Duration::from_secs(20),
        || {
            after = render(&format!("{base}/debug/pipelinez"));
            shown(&after, "traces/web", "accepted") == Some(30)
                && shown(&after, "traces/web", "sent") == Some(30)
        },
    );
    let cardinalityz = render(&format!("{base}/debug/cardinalityz"));
    assert!(
        cardinalityz.contains("no cardinality tracker"),
        "{cardinalityz}"
    );
}
