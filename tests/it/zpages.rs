//! zpages read the way a person reads them: Debian's Chromium, headless, loads the pages from
//! the release binary and the test reads the DOM Chromium rendered (`--dump-dom`), before and
//! after traffic, so the numbers shown are live. Also the `pprof` extension: a CPU profile
//! decoded with this file's own profile.proto types.

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

/// pprof's profile.proto, the fields this test reads, written here from the schema.
mod pprof_proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
    }
}

/// `pprof`: a CPU profile taken while otelgw is busy opens as pprof's profile.proto (decoded
/// here with this file's own types), names otelgw's functions, and is bounded: one at a time,
/// `seconds` checked, no heap profile pretended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pprof_serves_a_cpu_profile_pprof_readers_open() {
    use std::io::Read as _;
    let ports = Ports::new();
    let pprof_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "extensions:\n  pprof:\n    endpoint: 127.0.0.1:{pprof_port}\nreceivers:\n{}exporters:\n  debug:\nservice:\n  extensions: [pprof]\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [debug]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    let gw = Gateway::start(ports, dir, &config);
    let base = format!("http://127.0.0.1:{pprof_port}");
    let client = reqwest::Client::new();
    // keep otelgw busy while it profiles itself
    let port = gw.grpc_port;
    let load = tokio::spawn(async move {
        let mut c = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(format!("http://127.0.0.1:{port}")).await.unwrap();
        for i in 0..400u64 {
            let _ = c.export(otelgw::testdata::traces(i, 4, 50)).await;
        }
    });
    let first = client
        .get(format!("{base}/debug/pprof/profile?seconds=2"))
        .send();
    let first = tokio::spawn(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = client
        .get(format!("{base}/debug/pprof/profile?seconds=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status().as_u16(), 429, "one profile at a time");
    let resp = first.await.unwrap().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let gz = resp.bytes().await.unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut raw)
        .unwrap();
    let p = pprof_proto::Profile::decode(raw.as_slice()).unwrap();
    assert_eq!(p.string_table.first().map(String::as_str), Some(""));
    assert!(
        !p.sample_type.is_empty() && !p.sample.is_empty(),
        "{:?}",
        p.sample_type
    );
    assert!(p.duration_nanos >= 1_000_000_000, "{}", p.duration_nanos);
    let names: Vec<&str> = p
        .function
        .iter()
        .filter_map(|f| p.string_table.get(f.name as usize).map(String::as_str))
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.contains("otelgw") || n.contains("tokio")),
        "{:?}",
        &names[..names.len().min(20)]
    );
    load.abort();
    for (path, status) in [
        ("/debug/pprof/profile?seconds=0", 400),
        ("/debug/pprof/profile?seconds=3600", 400),
        ("/debug/pprof/heap", 501),
        ("/debug/pprof/", 200),
    ] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
    }
}
