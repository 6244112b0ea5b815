//! The `loki` exporter against an in-process Loki stand-in. Loki itself cannot be installed
//! here, so the stand-in decodes with an independent implementation — the `loki-api` crate's
//! own protobuf definitions for streams, labels, timestamps and lines, and a hand-written wire
//! walker for field 3 (structured metadata) — parses labels with Loki's selector rules, and
//! enforces Loki's documented limits: valid label names, at most 15 labels, lines ≤ 256 KB,
//! entries in timestamp order within a stream and inside the accepted window, and 429 with
//! `Retry-After` when told to rate-limit. It answers 204 like Loki. It runs as the handler of the
//! shared fake backend (`common::Backend`), which records every request it receives.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;
use loki_api::prost::Message as _;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use otelgw::testdata;

#[derive(Debug, Clone)]
struct Received {
    labels: BTreeMap<String, String>,
    line: String,
    ts_ns: i128,
    metadata: Vec<(String, String)>,
    tenant: Option<String>,
}

#[derive(Default)]
struct Loki {
    /// Answer 429 to this many pushes first.
    rate_limit: AtomicU64,
    /// Answer this status (permanently) when set.
    fail_with: AtomicU64,
    /// Answer 500 to this many pushes first.
    server_errors: AtomicU64,
    entries: Mutex<Vec<Received>>,
    violations: Mutex<Vec<String>>,
}

const PUSH_PATH: &str = "/loki/api/v1/push";

/// Pushes the stand-in received (answered or not).
fn pushes(server: &Backend) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path == PUSH_PATH)
        .count()
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    // Loki's selector syntax for a stream: {name="value", ...}
    let inner = s
        .trim()
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .ok_or("labels must be {…}")?;
    let mut out = BTreeMap::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("missing =")?;
        let name = rest[..eq].trim();
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!("invalid label name {name:?}"));
        }
        let mut chars = rest[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("label value must be quoted".into());
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("dangling escape".into()),
                },
                '"' => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or("unterminated value")?;
        if out.insert(name.to_string(), value).is_some() {
            return Err(format!("duplicate label {name}"));
        }
        rest = rest[end..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Ok(out)
}

/// Field 3 of each EntryAdapter, read straight from the wire (loki-api predates it).
fn structured_metadata(push: &[u8]) -> Vec<Vec<(String, String)>> {
    fn varint(b: &[u8], p: &mut usize) -> u64 {
        let mut v = 0;
        let mut shift = 0;
        loop {
            let x = b[*p];
            *p += 1;
            v |= ((x & 0x7f) as u64) << shift;
            if x < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    fn fields(b: &[u8]) -> Vec<(u64, &[u8])> {
        let mut p = 0;
        let mut out = vec![];
        while p < b.len() {
            let key = varint(b, &mut p);
            match key & 7 {
                0 => {
                    varint(b, &mut p);
                }
                2 => {
                    let len = varint(b, &mut p) as usize;
                    out.push((key >> 3, &b[p..p + len]));
                    p += len;
                }
                w => panic!("unexpected wire type {w}"),
            }
        }
        out
    }
    let mut entries = vec![];
    for (f, stream) in fields(push) {
        assert_eq!(f, 1);
        for (f, entry) in fields(stream) {
            if f != 2 {
                continue;
            }
            let mut md = vec![];
            for (f, pair) in fields(entry) {
                if f == 3 {
                    let kv = fields(pair);
                    let get = |n| {
                        kv.iter()
                            .find(|(f, _)| *f == n)
                            .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap())
                            .unwrap_or_default()
                    };
                    md.push((get(1), get(2)));
                }
            }
            entries.push(md);
        }
    }
    entries
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// Loki's answer to one request (the shared fake backend records it and calls this).
fn handle(loki: &Loki, req: &Recorded) -> Reply {
    let reply = |status: u16, body: &str| Reply::status(status).body(body.to_string());
    if req.path != PUSH_PATH {
        return reply(204, "");
    }
    let tenant = req.header("x-scope-orgid");
    let ct = req.header("content-type").unwrap_or_default();
    if loki.rate_limit.load(Ordering::SeqCst) > 0 {
        loki.rate_limit.fetch_sub(1, Ordering::SeqCst);
        return reply(429, "Ingestion rate limit exceeded").retry_after(1);
    }
    if loki.server_errors.load(Ordering::SeqCst) > 0 {
        loki.server_errors.fetch_sub(1, Ordering::SeqCst);
        return reply(500, "internal error");
    }
    let fail = loki.fail_with.load(Ordering::SeqCst);
    if fail > 0 {
        return reply(fail as u16, "entry for stream has timestamp too old");
    }
    if ct != "application/x-protobuf" {
        return reply(415, "only protobuf in this stand-in");
    }
    let raw = match snap::raw::Decoder::new().decompress_vec(&req.body) {
        Ok(r) => r,
        Err(e) => return reply(400, &format!("snappy: {e}")),
    };
    let push = match loki_api::logproto::PushRequest::decode(raw.as_slice()) {
        Ok(p) => p,
        Err(e) => return reply(400, &format!("protobuf: {e}")),
    };
    let metadata = structured_metadata(&raw);
    let mut i = 0;
    let mut got = vec![];
    let window = now_ns() - 3_600_000_000_000;
    for s in &push.streams {
        let labels = match parse_labels(&s.labels) {
            Ok(l) => l,
            Err(e) => {
                loki.violations.lock().unwrap().push(e.clone());
                return reply(400, &e);
            }
        };
        // a stand-in rule for "one bad stream": Loki rejects the whole push with 400
        if labels.get("k8s_pod_name").map(String::as_str) == Some("poison") {
            return reply(400, "stream {k8s_pod_name=\"poison\"} rejected: invalid");
        }
        if labels.len() > 15 {
            loki.violations
                .lock()
                .unwrap()
                .push("too many labels".into());
            return reply(400, "entry has 16 label names; limit 15");
        }
        let mut last = i128::MIN;
        for e in &s.entries {
            let ts = e
                .timestamp
                .as_ref()
                .map(|t| t.seconds as i128 * 1_000_000_000 + t.nanos as i128)
                .unwrap_or(0);
            if e.line.len() > 256 * 1024 {
                loki.violations.lock().unwrap().push("line too long".into());
                return reply(400, "line too long");
            }
            if ts < last || ts < window {
                loki.violations
                    .lock()
                    .unwrap()
                    .push(format!("out of order or too old: {ts}"));
                return reply(400, "entry out of order");
            }
            last = ts;
            got.push(Received {
                labels: labels.clone(),
                line: e.line.clone(),
                ts_ns: ts,
                metadata: metadata[i].clone(),
                tenant: tenant.clone(),
            });
            i += 1;
        }
    }
    loki.entries.lock().unwrap().extend(got);
    reply(204, "")
}

/// The Loki stand-in on the shared fake backend, on a free port.
async fn start_loki(loki: Arc<Loki>) -> Backend {
    start_loki_on(loki, 0).await
}

/// The Loki stand-in on 127.0.0.1:`port`.
async fn start_loki_on(loki: Arc<Loki>, port: u16) -> Backend {
    Backend::start_on(port, Script::handler(move |req| handle(&loki, req))).await
}

fn fresh_logs(seed: u64, n: usize) -> ExportLogsServiceRequest {
    let mut req = testdata::logs(seed, 1, n);
    let base = now_ns() as u64 - 5_000_000_000;
    for (i, r) in req.resource_logs[0].scope_logs[0]
        .log_records
        .iter_mut()
        .enumerate()
    {
        // out of order on purpose: the exporter must sort within each stream
        r.time_unix_nano = base + ((n - i) as u64) * 1_000;
    }
    req
}

fn gateway(loki_port: u16, extra: &str) -> Gateway {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "receivers:\n{}exporters:\n  loki:\n    endpoint: http://127.0.0.1:{loki_port}/loki/api/v1/push\n    tenant_id: team-a\n    retry_on_failure: {{initial_interval: 100ms, max_interval: 200ms, max_elapsed_time: 20s}}\n{extra}  otlphttp/loki:\n    endpoint: http://127.0.0.1:{loki_port}/otlp\nservice:\n  pipelines:\n    logs: {{receivers: [otlp], exporters: [loki, otlphttp/loki]}}\n{}",
        ports.otlp_receiver(),
        ports.telemetry()
    );
    Gateway::start(ports, dir, &config)
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_arrive_in_loki_with_labels_metadata_order_and_retries() {
    let loki = Arc::new(Loki::default());
    loki.rate_limit.store(1, Ordering::SeqCst);
    let server = start_loki(loki.clone()).await;
    let gw = gateway(server.port, "");
    let req = fresh_logs(1, 40);
    LogsServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap()
        .export(req.clone())
        .await
        .unwrap();
    wait_for("40 entries in loki", || {
        loki.entries.lock().unwrap().len() == 40
    })
    .await;
    assert!(
        loki.violations.lock().unwrap().is_empty(),
        "{:?}",
        loki.violations.lock().unwrap()
    );
    assert_eq!(pushes(&server), 2, "one 429, then accepted");
    assert_eq!(
        gw.metric("otelgw_exporter_retries_total", &[("exporter", "loki")]),
        1.0
    );
    let entries = loki.entries.lock().unwrap().clone();
    for e in &entries {
        assert_eq!(e.tenant.as_deref(), Some("team-a"));
        assert_eq!(e.labels["service_name"], "payments");
        assert_eq!(e.labels["service_namespace"], "shop");
        assert!(
            ["debug", "info", "warn", "error"].contains(&e.labels["level"].as_str()),
            "{:?}",
            e.labels
        );
        let md: BTreeMap<_, _> = e.metadata.iter().cloned().collect();
        assert_eq!(md["trace_id"].len(), 32);
        assert_eq!(md["span_id"].len(), 16);
        assert_eq!(md["http_route"], "/api/v1/orders/{id}");
        assert_eq!(md["service_instance_id"], "payments-0");
        assert!(e.line.starts_with("request "), "{}", e.line);
    }
    // every record arrived once, with its own timestamp and line
    let mut want: Vec<(i128, String)> = req.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .map(|r| {
            let body = match r.body.as_ref().and_then(|b| b.value.clone()) {
                Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => s,
                _ => String::new(),
            };
            (r.time_unix_nano as i128, body)
        })
        .collect();
    let mut got: Vec<(i128, String)> = entries.iter().map(|e| (e.ts_ns, e.line.clone())).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    // the otlp_http exporter pointed at Loki's native OTLP endpoint posts to /otlp/v1/logs
    wait_for("otlp post", || {
        server.requests().iter().any(|r| r.path == "/otlp/v1/logs")
    })
    .await;
    assert_eq!(
        gw.metric("otelcol_exporter_sent_log_records", &[("exporter", "loki")]),
        40.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_rejections_are_counted_and_not_retried() {
    let loki = Arc::new(Loki::default());
    loki.fail_with.store(400, Ordering::SeqCst);
    let server = start_loki(loki.clone()).await;
    let gw = gateway(server.port, "");
    let mut c = LogsServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap();
    c.export(fresh_logs(2, 5)).await.unwrap();
    c.export(fresh_logs(3, 5)).await.unwrap();
    wait_for("failures counted", || {
        gw.metric(
            "otelcol_exporter_send_failed_log_records",
            &[("exporter", "loki")],
        ) == 10.0
    })
    .await;
    assert_eq!(pushes(&server), 2, "one attempt each");
    assert_eq!(
        gw.metric("otelgw_exporter_retries_total", &[("exporter", "loki")]),
        0.0
    );
    let logs = gw.logs();
    assert_eq!(
        logs.matches("loki rejected a push").count(),
        1,
        "logged once per status"
    );
    assert!(
        logs.contains("timestamp too old"),
        "Loki's reason is in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_connection_refused_are_retried_and_nothing_is_lost() {
    // Loki is not there yet: connection refused, retried; then two 500s, retried
    let port = free_port();
    let gw = gateway(port, "    basic_auth: {username: gw, password: s3cret}\n");
    let req = fresh_logs(5, 12);
    LogsServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap()
        .export(req)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        gw.metric("otelgw_exporter_retries_total", &[("exporter", "loki")]) >= 1.0,
        "connection refused was retried"
    );
    let loki = Arc::new(Loki::default());
    loki.server_errors.store(2, Ordering::SeqCst);
    let server = start_loki_on(loki.clone(), port).await;
    wait_for("12 entries", || loki.entries.lock().unwrap().len() == 12).await;
    assert_eq!(pushes(&server), 3, "two 500s, then accepted");
    assert_eq!(
        gw.metric(
            "otelcol_exporter_send_failed_log_records",
            &[("exporter", "loki")]
        ),
        0.0
    );
    // the Authorization header of every push that had one
    let auth: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path == PUSH_PATH)
        .filter_map(|r| r.header("authorization"))
        .collect();
    assert!(auth.iter().all(|a| a.starts_with("Basic ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_stream_fails_its_push_and_nothing_else() {
    let loki = Arc::new(Loki::default());
    let server = start_loki(loki.clone()).await;
    let gw = gateway(server.port, "");
    let mut c = LogsServiceClient::connect(format!("http://127.0.0.1:{}", gw.grpc_port))
        .await
        .unwrap();
    let mut bad = fresh_logs(6, 3);
    bad.resource_logs[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes
        .push(testdata::kv("k8s.pod.name", testdata::s("poison")));
    c.export(bad).await.unwrap();
    c.export(fresh_logs(7, 4)).await.unwrap();
    wait_for("good push arrives", || {
        loki.entries.lock().unwrap().len() == 4
    })
    .await;
    wait_for("bad push counted", || {
        gw.metric(
            "otelcol_exporter_send_failed_log_records",
            &[("exporter", "loki")],
        ) == 3.0
    })
    .await;
    assert_eq!(pushes(&server), 2, "the 400 was not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_otel_sdk_sends_logs_that_arrive_in_the_right_streams() {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
    use opentelemetry_otlp::WithExportConfig as _;
    let loki = Arc::new(Loki::default());
    let server = start_loki(loki.clone()).await;
    let gw = gateway(server.port, "");
    let endpoint = format!("http://127.0.0.1:{}", gw.grpc_port);
    let sent = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _g = rt.enter();
        let exporter = opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .unwrap();
        let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("checkout")
                    .build(),
            )
            .build();
        let logger = provider.logger("checkout.logs");
        let mut sent = vec![];
        for (i, sev) in [Severity::Info, Severity::Error, Severity::Info]
            .into_iter()
            .enumerate()
        {
            let trace = TraceId::from_bytes([i as u8 + 1; 16]);
            let mut rec = logger.create_log_record();
            rec.set_body(format!("order {i} processed").into());
            rec.set_severity_number(sev);
            rec.set_trace_context(trace, SpanId::from_bytes([9; 8]), Some(TraceFlags::SAMPLED));
            rec.set_timestamp(SystemTime::now());
            logger.emit(rec);
            sent.push((
                format!("order {i} processed"),
                trace.to_string(),
                if sev == Severity::Error {
                    "error"
                } else {
                    "info"
                },
            ));
        }
        provider.force_flush().unwrap();
        let _ = provider.shutdown();
        sent
    })
    .await
    .unwrap();
    wait_for("3 entries", || loki.entries.lock().unwrap().len() == 3).await;
    let got = loki.entries.lock().unwrap().clone();
    for (line, trace, level) in sent {
        let e = got
            .iter()
            .find(|e| e.line == line)
            .unwrap_or_else(|| panic!("{line} missing: {got:?}"));
        assert_eq!(e.labels["service_name"], "checkout");
        assert_eq!(e.labels["level"], level);
        let md: BTreeMap<_, _> = e.metadata.iter().cloned().collect();
        assert_eq!(md["trace_id"], trace);
        assert_eq!(md["span_id"], "0909090909090909");
        assert_eq!(md["scope_name"], "checkout.logs");
        assert!(e.ts_ns > now_ns() - 60_000_000_000);
    }
    assert_eq!(
        got.iter().filter(|e| e.labels["level"] == "error").count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filelog_lines_reach_loki_with_service_name_labels_and_metadata() {
    let loki = Arc::new(Loki::default());
    let server = start_loki(loki.clone()).await;
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("checkout.log");
    // recent times: Loki refuses entries older than its window
    let t0 = (now_ns() / 1_000_000_000) as i64 - 10;
    let stamp = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    std::fs::write(
        &log,
        format!(
            "{} ERROR payment declined order=42\n{} INFO order placed order=43\n",
            stamp(t0),
            stamp(t0 + 1)
        ),
    )
    .unwrap();
    let ports = Ports::new();
    let config = format!(
        "receivers:
  filelog:
    include: ['{}']
    start_at: beginning
    poll_interval: 50ms
    resource: {{service.name: checkout, service.namespace: shop}}
    operators:
      - type: regex_parser
        regex: '^(?P<time>\\S+ \\S+) (?P<sev>[A-Z]+) (?P<msg>.*)$'
        timestamp: {{parse_from: attributes.time, layout: '%Y-%m-%d %H:%M:%S'}}
        severity: {{parse_from: attributes.sev}}
      - type: key_value_parser
        parse_from: attributes.msg
        parse_to: attributes.kv
        on_error: send_quiet
      - type: remove
        field: attributes.time
exporters:
  loki:
    endpoint: http://127.0.0.1:{}/loki/api/v1/push
service:
  pipelines:
    logs: {{receivers: [filelog], exporters: [loki]}}
{}",
        log.display(),
        server.port,
        ports.telemetry()
    );
    let _gw = Gateway::start(ports, tempfile::tempdir().unwrap(), &config);
    wait_for("2 entries in loki", || {
        loki.entries.lock().unwrap().len() == 2
    })
    .await;
    assert!(
        loki.violations.lock().unwrap().is_empty(),
        "{:?}",
        loki.violations.lock().unwrap()
    );
    let mut entries = loki.entries.lock().unwrap().clone();
    entries.sort_by_key(|e| e.ts_ns);
    for e in &entries {
        assert_eq!(e.labels["service_name"], "checkout", "{:?}", e.labels);
        assert_eq!(e.labels["service_namespace"], "shop");
        let md: BTreeMap<_, _> = e.metadata.iter().cloned().collect();
        assert_eq!(md["log_file_name"], "checkout.log", "{md:?}");
    }
    // the timestamp is the one in the line (UTC), and the severity parsed from it
    assert_eq!(entries[0].ts_ns, t0 as i128 * 1_000_000_000);
    assert_eq!(entries[1].ts_ns, (t0 as i128 + 1) * 1_000_000_000);
    assert_eq!(entries[0].labels["level"], "error");
    assert_eq!(entries[1].labels["level"], "info");
    assert!(
        entries[0].line.contains("payment declined"),
        "{}",
        entries[0].line
    );
}
