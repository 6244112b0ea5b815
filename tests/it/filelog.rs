//! The `filelog` receiver against a real writer process (`tests/python/log_writer.py`) that
//! appends, rotates by rename and by copy-truncate, and deletes old generations while otelgw
//! tails the files; otelgw is killed (SIGKILL) mid-way and restarted, and later stopped cleanly
//! and restarted. The receiver's records go through an OTLP exporter with a persistent queue
//! (file_storage, fsync always: what the pipelines accepted survives the kill) to a second
//! otelgw that writes them to a file — the Collector's "fault tolerant logs collection" shape.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use otelgw::data::Telemetry;

/// A record's body, attributes and resource attributes, as text.
type Rec = (String, BTreeMap<String, String>, BTreeMap<String, String>);

/// Every log record in a file export.
pub fn records(path: &Path) -> Vec<Rec> {
    let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
        .as_ref()
        .and_then(|v| v.value.clone())
    {
        Some(Any::StringValue(s)) => s,
        Some(Any::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    let mut out = vec![];
    for t in read_file_export(path) {
        let Telemetry::Logs(req) = t else { continue };
        for rl in req.resource_logs {
            let res: BTreeMap<String, String> = rl
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default()
                .iter()
                .map(|kv| (kv.key.clone(), text(&kv.value)))
                .collect();
            for sl in rl.scope_logs {
                for r in sl.log_records {
                    let attrs = r
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(&kv.value)))
                        .collect();
                    out.push((text(&r.body), attrs, res.clone()));
                }
            }
        }
    }
    out
}

/// The sequence numbers of `seq NNNNNNN` bodies, in arrival order.
fn seqs(path: &Path) -> Vec<u64> {
    records(path)
        .iter()
        .filter_map(|(b, _, _)| b.strip_prefix("seq ")?.get(..7)?.parse().ok())
        .collect()
}

fn agent_config(ports: &Ports, logs: &Path, state: &Path, sink_grpc: u16) -> String {
    format!(
        "receivers:
  filelog:
    include: ['{logs}/*.log*']
    start_at: beginning
    poll_interval: 50ms
    include_file_path: true
    storage: file_storage
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink_grpc}
    tls: {{insecure: true}}
    sending_queue: {{storage: file_storage}}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms}}
extensions:
  file_storage: {{directory: {state}}}
service:
  extensions: [file_storage]
  pipelines:
    logs: {{receivers: [filelog], exporters: [otlp]}}
{}",
        ports.telemetry(),
        logs = logs.display(),
        state = state.display(),
    )
}

#[test]
fn rotation_truncation_deletion_and_sigkill_lose_nothing_and_a_clean_restart_repeats_nothing() {
    let python = std::env::var("OTELGW_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let (sink, out) = file_sink();
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs");
    let state = work.path().join("state");
    std::fs::create_dir_all(&logs).unwrap();
    let ports = Ports::new();
    let config = agent_config(&ports, &logs, &state, sink.grpc_port);
    let mut agent = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);

    const LINES: u64 = 12_000;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/log_writer.py");
    let mut writer = Command::new(&python)
        .args([
            script,
            &logs.display().to_string(),
            &LINES.to_string(),
            "1500",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // kill otelgw while the writer is mid-way (between rotations), then start it again
    wait_until("half the lines exported", Duration::from_secs(60), || {
        seqs(&out).len() as u64 > LINES / 3
    });
    agent.signal("KILL");
    agent.wait_exit(Duration::from_secs(10));
    agent.spawn();
    let status = writer.wait().unwrap();
    assert!(status.success());
    wait_until("every line exported", Duration::from_secs(60), || {
        let got: std::collections::BTreeSet<u64> = seqs(&out).into_iter().collect();
        got.len() as u64 == LINES
    });
    let got = seqs(&out);
    let unique: std::collections::BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(unique.len() as u64, LINES, "none skipped");
    assert_eq!(unique.iter().next_back().copied(), Some(LINES - 1));
    // at least once: only what the kill interrupted (committed after the last checkpoint,
    // at most a few polls' worth) may arrive twice
    let dupes = got.len() - unique.len();
    assert!(dupes < 3000, "{dupes} duplicates");
    let paths: std::collections::BTreeSet<String> = records(&out)
        .into_iter()
        .filter_map(|(_, a, _)| a.get("log.file.path").cloned())
        .collect();
    assert!(paths.iter().any(|p| p.ends_with("app.log.1")), "{paths:?}");
    assert!(paths.iter().any(|p| p.ends_with("app.log")), "{paths:?}");

    // a clean stop and start reads nothing twice: only lines appended after it arrive
    let before = got.len();
    assert!(agent.stop().success());
    agent.spawn();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("app.log"))
        .unwrap();
    for i in LINES..LINES + 100 {
        writeln!(f, "seq {i:07} after-restart").unwrap();
    }
    drop(f);
    wait_until("the appended lines", Duration::from_secs(30), || {
        seqs(&out).len() >= before + 100
    });
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<u64> = seqs(&out)[before..].to_vec();
    assert_eq!(after, (LINES..LINES + 100).collect::<Vec<_>>());
    assert!(agent.logs().contains("filelog receiver started"));
    assert!(
        agent.metric(
            "otelcol_fileconsumer_open_files",
            &[("receiver", "filelog")]
        ) >= 1.0
    );
}

/// A process's resident memory in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[test]
fn a_refusing_pipeline_pauses_reading_with_bounded_memory_and_loses_nothing() {
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // 40 MB of log lines written before otelgw starts
    const LINES: u64 = 600_000;
    let mut f = std::io::BufWriter::new(std::fs::File::create(logs.join("big.log")).unwrap());
    for i in 0..LINES {
        writeln!(f, "seq {i:07} {}", "y".repeat(50)).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
    // the exporter's peer is not there yet: its small queue fills and the pipeline refuses
    let sink_ports = Ports::new();
    let ports = Ports::new();
    let config = format!(
        "receivers:
  filelog:
    include: ['{}/*.log']
    start_at: beginning
    poll_interval: 50ms
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{}
    tls: {{insecure: true}}
    sending_queue: {{queue_size: 4, num_consumers: 1}}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 0s}}
service:
  pipelines:
    logs: {{receivers: [filelog], exporters: [otlp]}}
{}",
        logs.display(),
        sink_ports.grpc,
        ports.telemetry()
    );
    let agent = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    wait_until("reading paused", Duration::from_secs(20), || {
        agent.logs().contains("reading paused")
    });
    std::thread::sleep(Duration::from_secs(2));
    let rss = rss_mib(agent.pid());
    let refused = agent.metric(
        "otelgw_receiver_requests_total",
        &[("receiver", "filelog"), ("outcome", "refused")],
    );
    assert!(refused >= 1.0, "refusals counted: {refused}");
    // 600k records decoded would take hundreds of MiB; a paused reader holds one batch
    assert!(rss < 80.0, "rss {rss:.1} MiB while paused");

    // the peer appears: everything arrives, once
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received.jsonl");
    let sink_config = format!(
        "receivers:\n{}exporters:\n  file:\n    path: {}\nservice:\n  pipelines:\n    logs: {{receivers: [otlp], exporters: [file]}}\n{}",
        sink_ports.otlp_receiver(),
        out.display(),
        sink_ports.telemetry()
    );
    let _sink = Gateway::start(sink_ports, dir, &sink_config);
    wait_until("every line", Duration::from_secs(120), || {
        count_items(&read_file_export(&out), otelgw::component::Signal::Logs) >= LINES
    });
    let got = seqs(&out);
    assert_eq!(got.len() as u64, LINES, "nothing lost, nothing twice");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in file order");
    assert_eq!(
        agent.metric(
            "otelgw_dropped_items_total",
            &[("component", "filelog"), ("reason", "retry_expired")]
        ),
        0.0
    );
}

#[test]
fn docker_json_and_cri_lines_become_body_stream_time_and_k8s_resource() {
    let work = tempfile::tempdir().unwrap();
    let pods = work.path().join("pods");
    let docker = pods.join("shop_web-7d9c_0123456789abcdef0123456789abcdef/web");
    let cri = pods.join("kube-system_dns-1_fedcba98-7654-3210-fedc-ba9876543210/coredns");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::create_dir_all(&cri).unwrap();
    std::fs::write(
        docker.join("0.log"),
        concat!(
            r#"{"log":"GET /health 200\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}"#,
            "\n",
            r#"{"log":"disk almost full\n","stream":"stderr","time":"2024-05-01T10:00:01Z"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        cri.join("2.log"),
        concat!(
            "2024-05-01T10:00:02.5Z stdout F plain cri line\n",
            "2024-05-01T10:00:03Z stdout P first half-\n",
            "2024-05-01T10:00:03Z stdout P second half-\n",
            "2024-05-01T10:00:03Z stdout F end\n",
        ),
    )
    .unwrap();
    let ports = Ports::new();
    let out = work.path().join("out.jsonl");
    let config = format!(
        "receivers:
  filelog:
    include: ['{}/*/*/*.log']
    start_at: beginning
    poll_interval: 50ms
    include_file_path: true
    operators:
      - type: container
exporters:
  file: {{path: {}}}
service:
  pipelines:
    logs: {{receivers: [filelog], exporters: [file]}}
{}",
        pods.display(),
        out.display(),
        ports.telemetry()
    );
    let _gw = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    wait_until("four records", Duration::from_secs(20), || {
        records(&out).len() >= 4
    });
    std::thread::sleep(Duration::from_millis(300));
    let recs = records(&out);
    assert_eq!(recs.len(), 4, "{recs:#?}");
    let find = |body: &str| {
        recs.iter()
            .find(|(b, _, _)| b == body)
            .unwrap_or_else(|| panic!("no record {body:?} in {recs:#?}"))
    };
    let (_, a, r) = find("GET /health 200");
    assert_eq!(a["log.iostream"], "stdout");
    assert_eq!(r["k8s.namespace.name"], "shop");
    assert_eq!(r["k8s.pod.name"], "web-7d9c");
    assert_eq!(r["k8s.pod.uid"], "0123456789abcdef0123456789abcdef");
    assert_eq!(r["k8s.container.name"], "web");
    assert_eq!(r["k8s.container.restart_count"], "0");
    assert_eq!(find("disk almost full").1["log.iostream"], "stderr");
    let (_, a, r) = find("first half-second half-end");
    assert_eq!(a["logtag"], "F");
    assert_eq!(r["k8s.namespace.name"], "kube-system");
    assert_eq!(r["k8s.container.name"], "coredns");
    assert_eq!(r["k8s.container.restart_count"], "2");
    find("plain cri line");
    // timestamps parsed from the runtime's field, not the time of reading
    let times: Vec<u64> = read_file_export(&out)
        .into_iter()
        .filter_map(|t| match t {
            Telemetry::Logs(r) => Some(r),
            _ => None,
        })
        .flat_map(|r| r.resource_logs)
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .filter(|r| {
            r.body
                .as_ref()
                .is_some_and(|b| format!("{b:?}").contains("GET /health"))
        })
        .map(|r| r.time_unix_nano)
        .collect();
    assert_eq!(times, [1_714_557_600_123_456_789]);
}
