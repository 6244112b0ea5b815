//! Test harness: runs the real `otelgw` binary with a generated config on free loopback ports,
//! waits for readiness, scrapes its self-metrics, signals it, and reads what a `file` exporter
//! wrote. Every wait is bounded; a gateway that does not come up fails the test with its log.
//! `backend` is the scriptable fake HTTP backend that push exporters send to.

mod backend;

pub use backend::{Backend, Recorded, Reply, Script};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use otelgw::data::{Signal, Telemetry};

/// A port that was free a moment ago. Picked below the kernel's ephemeral range (32768+), so an
/// outgoing connection cannot be handed the same port between this pick and the gateway's bind;
/// each test process walks its own stretch of the range.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 600) as u16 * 20,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..2_000 {
        let mut p = NEXT.fetch_add(1, Ordering::SeqCst);
        if p >= 32_000 {
            NEXT.store(20_000, Ordering::SeqCst);
            p = 20_000;
        }
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary under test: `OTELGW_BIN` when set (tests/run.sh points it at the release build,
/// the artifact users run), else the one cargo built for this test run.
pub fn otelgw_bin() -> String {
    std::env::var("OTELGW_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_otelgw").to_string())
}

/// A running otelgw process.
pub struct Gateway {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub admin_port: u16,
    pub grpc_port: u16,
    pub http_port: u16,
    pub config_path: PathBuf,
    /// Environment variables set for the otelgw process, beyond the test's own.
    pub env: Vec<(String, String)>,
    /// A command otelgw runs under (`unshare …`), given otelgw and its arguments; empty: none.
    pub wrapper: Vec<String>,
}

/// Ports and a temp dir, before the config is written.
pub struct Ports {
    pub admin: u16,
    pub grpc: u16,
    pub http: u16,
}

impl Ports {
    pub fn new() -> Ports {
        Ports {
            admin: free_port(),
            grpc: free_port(),
            http: free_port(),
        }
    }

    /// The telemetry block every test config ends with.
    pub fn telemetry(&self) -> String {
        format!(
            "  telemetry:\n    logs:\n      level: debug\n    metrics:\n      address: 127.0.0.1:{}\n",
            self.admin
        )
    }

    /// An `otlp` receiver on both protocols.
    pub fn otlp_receiver(&self) -> String {
        format!(
            "  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{}\n      http:\n        endpoint: 127.0.0.1:{}\n",
            self.grpc, self.http
        )
    }
}

impl Gateway {
    /// Writes `config` to a temp dir and starts otelgw on it; waits until `/readyz` is 200.
    pub fn start(ports: Ports, dir: tempfile::TempDir, config: &str) -> Gateway {
        Gateway::start_with_env(ports, dir, config, &[])
    }

    /// [`Gateway::start`] with `env` set in the otelgw process's environment.
    pub fn start_with_env(
        ports: Ports,
        dir: tempfile::TempDir,
        config: &str,
        env: &[(&str, &str)],
    ) -> Gateway {
        Gateway::launch(ports, dir, config, env, &[])
    }

    /// [`Gateway::start`] with otelgw run by `wrapper` (which must exec it in the same process,
    /// so the pid is otelgw's): `wrapper… <otelgw> --config <file>`.
    pub fn start_wrapped(
        ports: Ports,
        dir: tempfile::TempDir,
        config: &str,
        wrapper: &[&str],
    ) -> Gateway {
        Gateway::launch(ports, dir, config, &[], wrapper)
    }

    fn launch(
        ports: Ports,
        dir: tempfile::TempDir,
        config: &str,
        env: &[(&str, &str)],
        wrapper: &[&str],
    ) -> Gateway {
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config).unwrap();
        let mut gw = Gateway {
            child: None,
            admin_port: ports.admin,
            grpc_port: ports.grpc,
            http_port: ports.http,
            config_path,
            dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
        };
        gw.spawn();
        gw
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(otelgw_bin());
                c
            }
            None => Command::new(otelgw_bin()),
        };
        let child = cmd
            .arg("--config")
            .arg(&self.config_path)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("otelgw.log")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&format!("127.0.0.1:{}", self.admin_port), path)
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("otelgw exited early ({status}); log:\n{}", self.logs());
            }
            if let Some((200, _)) = self.admin_get("/readyz") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("otelgw not ready after 20s; log:\n{}", self.logs());
    }

    /// The value of one self-metric series (0 when absent).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (_, body) = self.admin_get("/metrics").expect("metrics scrape");
        metric_value(&body, name, labels)
    }

    pub fn metrics_text(&self) -> String {
        self.admin_get("/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// SIGTERM and wait (bounded) for exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(30))
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "otelgw did not exit within {limit:?}; log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal blocking HTTP/1.1 GET over loopback (keeps the harness free of client crates).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if !chunked {
        return Some((status, body.to_string()));
    }
    // de-chunk: `<hex size>\r\n<data>\r\n` … `0\r\n\r\n`
    let (mut out, mut rest) = (String::new(), body);
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            break;
        }
        out.push_str(after.get(..n)?);
        rest = after.get(n + 2..)?;
    }
    Some((status, out))
}

/// Parses one series from Prometheus text (labels given must all match; others ignored).
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (n, l) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        {
            return value.parse().unwrap_or(0.0);
        }
    }
    0.0
}

/// Waits (bounded) until `f` is true.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Reads a `file` exporter's output: one OTLP/JSON request per line.
pub fn read_file_export(path: &Path) -> Vec<Telemetry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // only complete lines: the exporter may be in the middle of writing the last one
    let complete = &text[..text.rfind('\n').map(|i| i + 1).unwrap_or(0)];
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let signal = if v.get("resourceSpans").is_some() {
                Signal::Traces
            } else if v.get("resourceMetrics").is_some() {
                Signal::Metrics
            } else {
                Signal::Logs
            };
            Telemetry::decode_json(signal, l.as_bytes())
                .unwrap_or_else(|e| panic!("bad line {e}: {l}"))
        })
        .collect()
}

/// Items of one signal in a file export.
pub fn count_items(data: &[Telemetry], s: Signal) -> u64 {
    data.iter()
        .filter(|t| t.signal() == s)
        .map(|t| t.item_count())
        .sum()
}

/// Paths of the test peers installed by `tests/setup-deps.sh`; fails loudly when missing.
pub fn peer(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if Path::new(&v).exists() => v,
        _ => panic!(
            "{var} is not set or does not exist: run the test suite with tests/run.sh \
             (it installs the real peers), or eval \"$(tests/setup-deps.sh)\" first"
        ),
    }
}

/// A gateway that writes every signal it receives over OTLP to a `file` exporter; returns it and
/// the file's path.
pub fn file_sink() -> (Gateway, PathBuf) {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received.jsonl");
    let config = format!(
        "receivers:\n{}exporters:\n  file:\n    path: {}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n    metrics: {{receivers: [otlp], exporters: [file]}}\n    logs: {{receivers: [otlp], exporters: [file]}}\n{}",
        ports.otlp_receiver(),
        out.display(),
        ports.telemetry()
    );
    (Gateway::start(ports, dir, &config), out)
}

/// A private CA and a `localhost` certificate it signed: (CA PEM, cert file, key file).
pub fn certs(dir: &Path) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, leaf.pem()).unwrap();
    std::fs::write(&k, leaf_key.serialize_pem()).unwrap();
    (ca.pem(), c.display().to_string(), k.display().to_string())
}

/// A real Prometheus server (killed on drop; its data dir is removed after it).
pub struct Prometheus(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A PromQL instant query through the HTTP API.
pub fn prom_query(port: u16, q: &str) -> serde_json::Value {
    let path = format!("/api/v1/query?query={}", urlencode(q));
    let (status, body) =
        http_get(&format!("127.0.0.1:{port}"), &path).unwrap_or((0, String::new()));
    assert_eq!(status, 200, "{q}: {body}");
    serde_json::from_str(&body).unwrap()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The single value a query returns, waiting (bounded) for scrapes to bring it.
pub fn prom_value(port: u16, q: &str) -> f64 {
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        let r = prom_query(port, q);
        let result = &r["data"]["result"];
        if result.as_array().is_some_and(|a| a.len() == 1) {
            return result[0]["value"][1].as_str().unwrap().parse().unwrap();
        }
        last = r;
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{q}: no single result after 20s: {last}");
}

/// Starts Prometheus scraping `target_port` every second; returns it and its port once ready.
pub fn start_prometheus(bin: &str, target_port: u16) -> (Prometheus, u16) {
    start_prometheus_with(
        bin,
        &format!("  - job_name: otelgw\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"),
        &[],
    )
}

/// Starts Prometheus (exemplar storage on, `scrape_interval: 1s`) with `scrape_configs` (YAML
/// list items, indented two spaces; `{self}` stands for its own address) and extra flags;
/// returns it and its port once ready.
pub fn start_prometheus_with(bin: &str, scrape_configs: &str, flags: &[&str]) -> (Prometheus, u16) {
    let prom_port = free_port();
    let pdir = tempfile::tempdir().unwrap();
    let cfg = pdir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}",
            scrape_configs.replace("{self}", &format!("127.0.0.1:{prom_port}"))
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            pdir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .arg("--enable-feature=exemplar-storage")
        .args(flags)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(pdir.path().join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let prom = Prometheus(child, pdir);
    wait_until("prometheus ready", Duration::from_secs(30), || {
        matches!(
            http_get(&format!("127.0.0.1:{prom_port}"), "/-/ready"),
            Some((200, _))
        )
    });
    (prom, prom_port)
}

/// A gRPC client that sends raw bytes as the message (`otelgw::grpc::codec::raw_request`),
/// connected to 127.0.0.1:`port`.
pub async fn raw_grpc(port: u16) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}
