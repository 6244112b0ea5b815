//! The `hostmetrics` receiver against an independent reading of the same host: Debian's
//! `prometheus-node-exporter`, scraped at the same moment as otelgw's `prometheus` exporter
//! (which carries what `hostmetrics` collected every 500 ms). Memory, CPU seconds, filesystem
//! sizes, load and network bytes agree within what changes between the two reads; the metric
//! names are the Collector's.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn page(port: u16) -> String {
    http_get(&format!("127.0.0.1:{port}"), "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

/// Every sample of `name` whose labels include `labels`: (label text, value).
fn all(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, lab) = series.split_once('{').unwrap_or((series, ""));
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| lab.contains(&format!("{k}=\"{v}\""))))
            .then(|| (lab.to_string(), value.parse().unwrap_or(f64::NAN)))
        })
        .collect()
}

fn one(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = all(text, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].1
}

fn near(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

#[test]
fn hostmetrics_agrees_with_node_exporter() {
    let node_bin = peer("OTELGW_TEST_NODE_EXPORTER");
    let node_port = free_port();
    let _node = Proc(
        Command::new(&node_bin)
            .args([
                format!("--web.listen-address=127.0.0.1:{node_port}"),
                "--collector.disable-defaults".into(),
                "--collector.meminfo".into(),
                "--collector.cpu".into(),
                "--collector.filesystem".into(),
                "--collector.loadavg".into(),
                "--collector.netdev".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ports = Ports::new();
    let exp_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n  hostmetrics:\n    collection_interval: 500ms\n    initial_delay: 0s\n    scrapers:\n      cpu:\n      memory:\n      load:\n      disk:\n      filesystem:\n      network:\n      paging:\n      processes:\n      system:\n        metrics: {{system.uptime: {{enabled: true}}}}\n      process:\n        include: {{names: [otelgw], match_type: strict}}\n        mute_process_io_error: true\nexporters:\n  prometheus:\n    endpoint: 127.0.0.1:{exp_port}\n    resource_to_telemetry_conversion: {{enabled: true}}\nservice:\n  pipelines:\n    metrics: {{receivers: [hostmetrics], exporters: [prometheus]}}\n{}",
        ports.telemetry()
    );
    let gw = Gateway::start(ports, dir, &config);
    wait_until("hostmetrics collected", Duration::from_secs(20), || {
        page(exp_port).contains("system_cpu_time_seconds_total")
            && page(node_port).contains("node_memory_MemTotal_bytes")
    });
    // both read as close together as possible (after one more collection)
    std::thread::sleep(Duration::from_millis(600));
    let (ours, node) = (page(exp_port), page(node_port));

    // the Collector's names (default scrapers' default metrics) are all there
    for name in [
        "system_cpu_time_seconds_total",
        "system_memory_usage_bytes",
        "system_cpu_load_average_1m",
        "system_cpu_load_average_5m",
        "system_cpu_load_average_15m",
        "system_disk_io_bytes_total",
        "system_disk_operations_total",
        "system_filesystem_usage_bytes",
        "system_network_io_bytes_total",
        "system_network_packets_total",
        "system_network_connections",
        "system_paging_faults_total",
        "system_processes_count",
        "system_processes_created_total",
        "system_uptime_seconds",
        "process_cpu_time_seconds_total",
        "process_memory_usage_bytes",
    ] {
        assert!(
            ours.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{ours}"
        );
    }

    // memory: used is MemTotal − MemAvailable (the Collector's current rule), free is MemFree
    // (read within ~1 s of each other)
    let total = one(&node, "node_memory_MemTotal_bytes", &[]);
    let used = one(&ours, "system_memory_usage_bytes", &[("state", "used")]);
    let node_used = total - one(&node, "node_memory_MemAvailable_bytes", &[]);
    assert!(
        near(used, node_used, total * 0.05),
        "used {used} vs {node_used}"
    );
    let free = one(&ours, "system_memory_usage_bytes", &[("state", "free")]);
    assert!(
        near(
            free,
            one(&node, "node_memory_MemFree_bytes", &[]),
            total * 0.05
        ),
        "free {free}"
    );

    // cpu seconds since boot, per cpu and state, within what 2 s can add
    let cpus = all(&node, "node_cpu_seconds_total", &[("mode", "idle")]).len();
    assert!(cpus >= 1);
    for cpu in 0..cpus {
        for (state, mode) in [("idle", "idle"), ("user", "user"), ("system", "system")] {
            let a = one(
                &ours,
                "system_cpu_time_seconds_total",
                &[("cpu", &format!("cpu{cpu}")), ("state", state)],
            );
            let b = one(
                &node,
                "node_cpu_seconds_total",
                &[("cpu", &cpu.to_string()), ("mode", mode)],
            );
            assert!(near(a, b, 2.5), "cpu{cpu} {state}: otelgw {a} node {b}");
        }
    }

    // the root filesystem: same size; free is what is available to users
    let size = one(&node, "node_filesystem_size_bytes", &[("mountpoint", "/")]);
    let fs: f64 = ["used", "free", "reserved"]
        .iter()
        .map(|s| {
            one(
                &ours,
                "system_filesystem_usage_bytes",
                &[("mountpoint", "/"), ("state", s)],
            )
        })
        .sum();
    assert_eq!(fs, size, "used+free+reserved = size of /");
    let avail = one(&node, "node_filesystem_avail_bytes", &[("mountpoint", "/")]);
    let ours_free = one(
        &ours,
        "system_filesystem_usage_bytes",
        &[("mountpoint", "/"), ("state", "free")],
    );
    // (other tests write files meanwhile: a generous margin)
    assert!(
        near(ours_free, avail, size * 0.01 + 512.0 * 1024.0 * 1024.0),
        "{ours_free} vs {avail}"
    );

    // load and loopback traffic
    let l1 = one(&ours, "system_cpu_load_average_1m", &[]);
    assert!(near(l1, one(&node, "node_load1", &[]), 1.0), "load {l1}");
    // network bytes per device (node_exporter leaves out `lo`; otelgw reports it too)
    let lo_in = one(
        &ours,
        "system_network_io_bytes_total",
        &[("device", "lo"), ("direction", "receive")],
    );
    assert!(lo_in > 0.0, "loopback carried this test's own traffic");
    for (labels, node_bytes) in all(&node, "node_network_receive_bytes_total", &[]) {
        let device = labels
            .split("device=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap();
        let ours_bytes = one(
            &ours,
            "system_network_io_bytes_total",
            &[("device", device), ("direction", "receive")],
        );
        assert!(
            near(ours_bytes, node_bytes, node_bytes * 0.1 + 1e6),
            "{device}: {ours_bytes} vs {node_bytes}"
        );
    }

    // the process scraper found otelgw itself, under its own resource
    let rss = all(
        &ours,
        "process_memory_usage_bytes",
        &[("process_executable_name", "otelgw")],
    );
    assert!(
        rss.iter()
            .any(|(l, v)| l.contains(&format!("process_pid=\"{}\"", gw.pid())) && *v > 1e6),
        "{rss:?}"
    );
    assert!(
        gw.metric(
            "otelcol_scraper_scraped_metric_points",
            &[("scraper", "cpu")]
        ) > 0.0
    );
    assert_eq!(
        gw.metric(
            "otelcol_scraper_errored_metric_points",
            &[("scraper", "memory")]
        ),
        0.0
    );
}
