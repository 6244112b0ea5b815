//! Running the `prometheus` receiver: per scrape config, a manager task discovers targets
//! (static groups, and file SD files re-read every `refresh_interval` when they changed) and
//! keeps one scrape loop per target; a target that disappears gets staleness markers for its
//! series and its loop ends.
//!
//! A target's loop waits an offset within the interval taken from the target's hash (so
//! targets spread over the interval), then scrapes every interval; a scrape never overlaps the
//! next (a late one delays the next tick) and is bounded by `scrape_timeout`; a slow or broken
//! target only ever holds its own loop. One scrape: GET with Prometheus' `Accept` (OpenMetrics
//! first), gzip, the body read up to `body_size_limit` (decompressed size), the memory gate
//! admits the body before it is parsed, [`super::exposition`] parses, target labels are joined
//! (`honor_labels`), `metric_relabel_configs` run, the limits are checked, and
//! [`super::translate`] turns the samples into OTLP with the scrape's own series — `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`,
//! `scrape_series_added` — as Prometheus writes them. A failed scrape (connection, status,
//! timeout, body too large, parse error, a limit) reports `up` 0, marks the previous series
//! stale and logs the error when it changes.
//!
//! Backpressure: when the memory gate or the pipelines refuse, the scrape is counted as
//! `otelgw_prometheus_receiver_scrapes_total{result="refused"}` and nothing is buffered; the
//! next interval scrapes again.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::sync::watch;

use super::exposition::{self, Format, MetricType};
use super::relabel::{process_with, Labels, Rule, Scratch};
use super::targets::{self, Group, Target};
use super::translate::{Scraped, ScrapedExemplar, TargetState};
use super::{PrometheusReceiverConfig, ScrapeConfig};
use crate::admission::{Cost, MemoryGate};
use crate::cardinality::{combine, hash_str};
use crate::component::{BuildError, Signal};
use crate::data::{unix_nanos, Payload, RequestMeta, Telemetry};
use crate::exporters::tls::TlsClientConfig;
use crate::receivers::intake::{Intake, Outcome};
use crate::receivers::{stopped, ReceiverContext};
use crate::telemetry::metrics::{names, Counter, Gauge};

/// The series every scrape reports about itself.
const REPORT: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// With `report_extra_scrape_metrics`.
const EXTRA_REPORT: [&str; 3] = [
    "scrape_body_size_bytes",
    "scrape_sample_limit",
    "scrape_timeout_seconds",
];

/// What Prometheus 2.42 sends: OpenMetrics first, then the text format.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// How a page becomes samples: the job's label rules and limits (see [`Shaping::samples`]).
pub struct Shaping {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    /// `global.external_labels`.
    pub external_labels: Labels,
    pub metric_rules: Vec<Rule>,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
}

/// One scrape config, ready to run.
struct Job {
    receiver: String,
    sc: ScrapeConfig,
    shaping: Shaping,
    interval: Duration,
    timeout: Duration,
    global: super::Global,
    client: reqwest::Client,
    headers: HeaderMap,
    target_rules: Vec<Rule>,
    extra_metrics: bool,
    intake: Arc<Intake>,
    gate: Option<Arc<MemoryGate>>,
    ok: Counter,
    failed: Counter,
    refused: Counter,
    targets: Gauge,
    /// The number of targets when it is over `target_limit` (0: within it).
    over_limit: AtomicUsize,
}

fn compile(rules: &[super::relabel::RelabelConfig]) -> Result<Vec<Rule>, BuildError> {
    rules
        .iter()
        .map(|r| r.compile().map_err(BuildError::Other))
        .collect()
}

fn read_secret(inline: &Option<String>, file: &Option<String>) -> Result<String, BuildError> {
    match (inline, file) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map(|s| s.trim().to_string())
            .map_err(|e| BuildError::Other(format!("{f}: {e}"))),
        (None, None) => Ok(String::new()),
    }
}

impl Job {
    fn new(
        cfg: &PrometheusReceiverConfig,
        sc: &ScrapeConfig,
        ctx: &ReceiverContext,
        intake: Arc<Intake>,
    ) -> Result<Job, BuildError> {
        let g = &cfg.config.global;
        let tls = sc
            .tls_config
            .as_ref()
            .map(|t| TlsClientConfig {
                insecure_skip_verify: t.insecure_skip_verify,
                ca_file: t.ca_file.clone(),
                cert_file: t.cert_file.clone(),
                key_file: t.key_file.clone(),
                server_name_override: t.server_name.clone(),
                ..TlsClientConfig::default()
            })
            .unwrap_or_default();
        // the scrape's own timeout (in `scrape_once`) fires first, with its clear message; the
        // client's is a backstop
        let client = tls.http_client_with(
            sc.timeout(g) + Duration::from_millis(500),
            sc.follow_redirects,
        )?;
        let mut headers = HeaderMap::new();
        let value = |s: String| {
            HeaderValue::from_str(&s).map_err(|e| BuildError::Other(format!("credentials: {e}")))
        };
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static(ACCEPT));
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        headers.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(concat!("otelgw/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert(
            "x-prometheus-scrape-timeout-seconds",
            value(format!("{}", sc.timeout(g).as_secs_f64()))?,
        );
        if let Some(b) = &sc.basic_auth {
            use base64::Engine as _;
            let pw = read_secret(&b.password, &b.password_file)?;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{pw}", b.username));
            headers.insert(
                reqwest::header::AUTHORIZATION,
                value(format!("Basic {token}"))?,
            );
        }
        if let Some(a) = &sc.authorization {
            let cred = read_secret(&a.credentials, &a.credentials_file)?;
            headers.insert(
                reqwest::header::AUTHORIZATION,
                value(format!("{} {cred}", a.kind))?,
            );
        }
        let id = ctx.id.to_string();
        let scrapes = |result: &str| {
            ctx.registry.counter(
                names::PROMETHEUS_RECEIVER_SCRAPES,
                "Scrapes by job and result (success, failed, refused by the pipelines).",
                &[("receiver", &id), ("job", &sc.job_name), ("result", result)],
            )
        };
        Ok(Job {
            sc: sc.clone(),
            interval: sc.interval(g).max(Duration::from_millis(1)),
            timeout: sc.timeout(g).max(Duration::from_millis(1)),
            global: g.clone(),
            client,
            headers,
            target_rules: compile(&sc.relabel_configs)?,
            shaping: Shaping {
                honor_labels: sc.honor_labels,
                honor_timestamps: sc.honor_timestamps,
                external_labels: g
                    .external_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                metric_rules: compile(&sc.metric_relabel_configs)?,
                sample_limit: sc.sample_limit,
                label_limit: sc.label_limit,
                label_name_length_limit: sc.label_name_length_limit,
                label_value_length_limit: sc.label_value_length_limit,
            },
            extra_metrics: cfg.report_extra_scrape_metrics,
            intake,
            gate: ctx.gate.clone(),
            ok: scrapes("success"),
            failed: scrapes("failed"),
            refused: scrapes("refused"),
            targets: ctx.registry.gauge(
                names::PROMETHEUS_RECEIVER_TARGETS,
                "Targets being scraped, by job.",
                &[("receiver", &id), ("job", &sc.job_name)],
            ),
            over_limit: AtomicUsize::new(0),
            receiver: id,
        })
    }
}

/// Builds every job (clients, credentials, rules) and starts the receiver's task.
pub fn spawn(
    cfg: &PrometheusReceiverConfig,
    ctx: &ReceiverContext,
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, BuildError> {
    let id = ctx.id.to_string();
    let intake = Arc::new(Intake::new(
        &ctx.registry,
        &id,
        "http",
        Signal::Metrics,
        ctx.metrics.clone(),
    ));
    let jobs = cfg
        .config
        .scrape_configs
        .iter()
        .map(|sc| Job::new(cfg, sc, ctx, intake.clone()).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::info!(receiver = %id, jobs = jobs.len(), "prometheus receiver started");
    Ok(tokio::spawn(async move {
        futures_util::future::join_all(jobs.into_iter().map(|j| j.manage(stop.clone()))).await;
    }))
}

/// What the file SD files looked like when last read.
#[derive(Default)]
struct FileSd {
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
    groups: HashMap<PathBuf, Vec<Group>>,
}

impl FileSd {
    /// Re-reads the files when any changed (or appeared, or went away); true when it did.
    fn refresh(&mut self, patterns: &[String], receiver: &str) -> bool {
        let files: Vec<PathBuf> = patterns.iter().flat_map(|p| targets::expand(p)).collect();
        let stamps: Vec<(PathBuf, Option<SystemTime>)> = files
            .iter()
            .map(|f| {
                (
                    f.clone(),
                    std::fs::metadata(f).and_then(|m| m.modified()).ok(),
                )
            })
            .collect();
        if stamps == self.stamps {
            return false;
        }
        self.stamps = stamps;
        let mut next = HashMap::new();
        for f in files {
            match targets::read_file(&f) {
                Ok(g) => {
                    next.insert(f, g);
                }
                Err(e) => {
                    tracing::warn!(receiver = %receiver, error = %e, "prometheus file_sd: cannot read; keeping its previous targets");
                    if let Some(old) = self.groups.remove(&f) {
                        next.insert(f, old);
                    }
                }
            }
        }
        self.groups = next;
        true
    }
}

/// A running target loop.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Job {
    /// Discovers targets and keeps one loop per target until `stop`.
    async fn manage(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let patterns: Vec<String> = self
            .sc
            .file_sd_configs
            .iter()
            .flat_map(|f| f.files.iter().cloned())
            .collect();
        let refresh = self
            .sc
            .file_sd_configs
            .iter()
            .map(|f| f.refresh_interval.get())
            .min()
            .unwrap_or(Duration::from_secs(300))
            .max(Duration::from_millis(100));
        let mut files = FileSd::default();
        let mut running: HashMap<u64, Running> = HashMap::new();
        // loops of targets that went away, finishing their staleness markers
        let mut draining: HashMap<u64, tokio::task::JoinHandle<()>> = HashMap::new();
        let mut first = true;
        loop {
            if files.refresh(&patterns, &self.receiver) || first {
                first = false;
                let mut groups: Vec<Group> = self
                    .sc
                    .static_configs
                    .iter()
                    .map(|s| Group {
                        targets: s.targets.clone(),
                        labels: s.labels.clone(),
                    })
                    .collect();
                let mut paths: Vec<&PathBuf> = files.groups.keys().collect();
                paths.sort();
                for p in paths {
                    groups.extend(files.groups.get(p).cloned().unwrap_or_default());
                }
                let found = targets::targets(&self.sc, &self.global, &self.target_rules, &groups);
                let over = self.sc.target_limit > 0 && found.len() as u64 > self.sc.target_limit;
                if over {
                    tracing::error!(receiver = %self.receiver, job = %self.sc.job_name, targets = found.len(), limit = self.sc.target_limit, "prometheus: target_limit exceeded; every target of this job reports up 0");
                }
                self.over_limit
                    .store(if over { found.len() } else { 0 }, Ordering::Relaxed);
                self.reconcile(&mut running, &mut draining, found, &stop)
                    .await;
            }
            if patterns.is_empty() {
                stopped(&mut stop).await;
                break;
            }
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => break,
                _ = tokio::time::sleep(refresh) => {}
            }
        }
        for (_, r) in running.drain() {
            let _ = r.task.await;
        }
        for (_, t) in draining.drain() {
            let _ = t.await;
        }
    }

    /// Starts loops for new targets and stops those of targets that went away (their loops
    /// finish their staleness markers in `draining`; a target that comes back waits for its
    /// old loop first, so old markers never end new series).
    async fn reconcile(
        self: &Arc<Self>,
        running: &mut HashMap<u64, Running>,
        draining: &mut HashMap<u64, tokio::task::JoinHandle<()>>,
        found: Vec<Target>,
        stop: &watch::Receiver<bool>,
    ) {
        let keys: HashSet<u64> = found.iter().map(|t| t.key).collect();
        let gone: Vec<u64> = running
            .keys()
            .filter(|k| !keys.contains(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(r) = running.remove(&k) {
                let _ = r.stop.send(true);
                draining.insert(k, r.task);
            }
        }
        draining.retain(|_, t| !t.is_finished());
        for t in found {
            if running.contains_key(&t.key) {
                continue;
            }
            if let Some(old) = draining.remove(&t.key) {
                let _ = old.await;
            }
            let (own, own_rx) = watch::channel(false);
            let key = t.key;
            let task = tokio::spawn(self.clone().target_loop(t, stop.clone(), own_rx));
            running.insert(key, Running { stop: own, task });
        }
        self.targets.set(running.len() as i64);
    }

    async fn target_loop(
        self: Arc<Self>,
        target: Target,
        mut stop: watch::Receiver<bool>,
        mut removed: watch::Receiver<bool>,
    ) {
        let mut st = Scrapes::default();
        let interval_ns = self.interval.as_nanos().max(1);
        let offset = Duration::from_nanos((u128::from(target.key) % interval_ns) as u64);
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            _ = stopped(&mut removed) => return,
            _ = tokio::time::sleep(offset) => {}
        }
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                _ = stopped(&mut removed) => break,
                _ = tick.tick() => {}
            }
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                _ = self.scrape_once(&target, &mut st) => {}
            }
        }
        // the target went away: its series and its `up`/`scrape_*` end
        let mut names: Vec<&str> = REPORT.to_vec();
        if self.extra_metrics {
            names.extend(EXTRA_REPORT);
        }
        let rm = st
            .state
            .end(&target.meta, &names, unix_nanos(SystemTime::now()));
        self.deliver(rm, 0).await;
    }
}

/// A target's state across scrapes.
#[derive(Default)]
struct Scrapes {
    state: TargetState,
    /// Series hashes of the last successful scrape (for `scrape_series_added`).
    seen: HashSet<u64>,
    last_error: Option<String>,
    scratch: Scratch,
}

/// A fetched body and how to read it.
struct Body {
    bytes: Vec<u8>,
    format: Format,
}

impl Job {
    async fn scrape_once(&self, target: &Target, st: &mut Scrapes) {
        let started = Instant::now();
        let now_ns = unix_nanos(SystemTime::now());
        let over = self.over_limit.load(Ordering::Relaxed);
        let fetched = if over > 0 {
            Err(format!(
                "target_limit exceeded ({over} targets, limit {})",
                self.sc.target_limit
            ))
        } else {
            match tokio::time::timeout(self.timeout, self.fetch(&target.url)).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "scrape timed out after {:?} (scrape_timeout)",
                    self.timeout
                )),
            }
        };
        // the body is admitted before it is parsed; held until the pipelines took the result
        let mut _held = None;
        if let (Ok(body), Some(g)) = (&fetched, &self.gate) {
            // priced by lines: a page of tiny samples costs far more than its bytes
            let lines = body.bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
            let cost = Cost::Scrape {
                bytes: body.bytes.len() as u64,
                lines,
            };
            match g.admit(cost.bytes()) {
                Ok(t) => _held = Some(t),
                Err(_) => {
                    self.refused.inc();
                    self.intake.count_refused_request();
                    tracing::warn!(receiver = %self.receiver, target = %target.url, "prometheus: memory limit reached; this scrape is dropped and retried next interval");
                    return;
                }
            }
        }
        let body_size = fetched.as_ref().map(|b| b.bytes.len()).unwrap_or(0);
        let result = fetched.and_then(|b| {
            let text = std::str::from_utf8(&b.bytes)
                .map_err(|e| format!("the body is not UTF-8 ({e})"))?;
            self.shaping
                .samples(text, b.format, &target.labels, &mut st.scratch)
        });
        let duration = started.elapsed().as_secs_f64();
        let mut report: Vec<(&str, f64)> = Vec::with_capacity(8);
        let rm = match result {
            Ok((samples, scraped)) => {
                let mut seen = HashSet::with_capacity(samples.len());
                for s in &samples {
                    let mut h = hash_str(&s.name);
                    for (k, v) in &s.labels {
                        h = combine(h, combine(hash_str(k), hash_str(v)));
                    }
                    seen.insert(h);
                }
                let added = seen.difference(&st.seen).count();
                st.seen = seen;
                if st.last_error.take().is_some() {
                    tracing::info!(receiver = %self.receiver, target = %target.url, "prometheus: target is up again");
                }
                report.extend(REPORT.into_iter().zip([
                    1.0,
                    duration,
                    scraped as f64,
                    samples.len() as f64,
                    added as f64,
                ]));
                self.extra(&mut report, body_size);
                self.ok.inc();
                st.state.translate(&target.meta, samples, &report, now_ns)
            }
            Err(e) => {
                if st.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(receiver = %self.receiver, job = %self.sc.job_name, target = %target.url, error = %e, "prometheus: scrape failed");
                    st.last_error = Some(e);
                }
                st.seen.clear();
                report.extend(REPORT.into_iter().zip([0.0, duration, 0.0, 0.0, 0.0]));
                self.extra(&mut report, body_size);
                self.failed.inc();
                st.state.fail(&target.meta, &report, now_ns)
            }
        };
        self.deliver(rm, body_size as u64).await;
    }

    fn extra(&self, report: &mut Vec<(&str, f64)>, body_size: usize) {
        if self.extra_metrics {
            report.extend(EXTRA_REPORT.into_iter().zip([
                body_size as f64,
                self.sc.sample_limit as f64,
                self.timeout.as_secs_f64(),
            ]));
        }
    }

    /// Hands one scrape's metrics to the pipelines.
    async fn deliver(&self, rm: ResourceMetrics, wire: u64) {
        let data = Telemetry::Metrics(ExportMetricsServiceRequest {
            resource_metrics: vec![rm],
        });
        let meta = RequestMeta {
            wire_size: wire.max(data.encoded_len() as u64),
            ..RequestMeta::default()
        };
        match self
            .intake
            .receive(Payload::Decoded(data), Arc::new(meta))
            .await
        {
            Outcome::Accepted { .. } => {}
            other => {
                self.refused.inc();
                tracing::warn!(receiver = %self.receiver, job = %self.sc.job_name, outcome = ?other, "prometheus: the pipelines did not take this scrape; the next interval scrapes again");
            }
        }
    }

    fn fetch_error(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("scrape timed out after {:?} (scrape_timeout)", self.timeout)
        } else {
            crate::net::error_chain(e)
        }
    }

    /// GET the target: status, gzip and the size limit (on the decompressed body).
    async fn fetch(&self, url: &str) -> Result<Body, String> {
        let resp = self
            .client
            .get(url)
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| self.fetch_error(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("server returned HTTP status {status}"));
        }
        let header = |n: reqwest::header::HeaderName| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let format = Format::from_content_type(header(reqwest::header::CONTENT_TYPE).as_deref());
        let gzip = header(reqwest::header::CONTENT_ENCODING).is_some_and(|e| e == "gzip");
        let limit = match self.sc.body_size_limit.0 {
            0 => u64::MAX,
            n => n,
        };
        let too_big = || format!("body size limit exceeded (limit: {limit} bytes)");
        let mut bytes = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.fetch_error(&e))? {
            // compressed bytes count too: a gzip stream never needs more than the limit
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        if gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .take(limit.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
            if out.len() as u64 > limit {
                return Err(too_big());
            }
            bytes = out;
        }
        Ok(Body { bytes, format })
    }
}

impl Shaping {
    /// Parses a body into samples with target labels joined and metric relabeling applied;
    /// also returns how many samples the page had.
    pub fn samples(
        &self,
        text: &str,
        format: Format,
        target_labels: &Labels,
        scratch: &mut Scratch,
    ) -> Result<(Vec<Scraped>, usize), String> {
        let families = exposition::parse(text, format).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut scraped = 0usize;
        for fam in &families {
            for s in &fam.samples {
                scraped += 1;
                let mut labels: Labels = s
                    .labels
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                join_target_labels(&mut labels, target_labels, self.honor_labels);
                let mut name = s.name.to_string();
                if !self.metric_rules.is_empty() {
                    labels.push(("__name__".into(), name));
                    if !process_with(&self.metric_rules, &mut labels, scratch) {
                        continue;
                    }
                    let Some(i) = labels.iter().position(|(n, _)| n == "__name__") else {
                        continue;
                    };
                    name = labels.remove(i).1;
                }
                self.check_limits(&labels)?;
                // after relabeling and limits, as Prometheus adds them
                for (k, v) in &self.external_labels {
                    if !labels.iter().any(|(n, _)| n == k) {
                        labels.push((k.clone(), v.clone()));
                    }
                }
                labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                let same = name == s.name;
                out.push(Scraped {
                    family: if same {
                        fam.name.to_string()
                    } else {
                        name.clone()
                    },
                    kind: if same { fam.kind } else { MetricType::Unknown },
                    help: fam.help.as_deref().unwrap_or("").to_string(),
                    unit: fam.unit.unwrap_or("").to_string(),
                    name,
                    labels,
                    value: s.value,
                    timestamp_ms: s.timestamp_ms.filter(|_| self.honor_timestamps),
                    exemplar: s.exemplar.as_ref().map(|e| ScrapedExemplar {
                        labels: e
                            .labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        value: e.value,
                        timestamp_ms: e.timestamp_ms,
                    }),
                });
                if self.sample_limit > 0 && out.len() as u64 > self.sample_limit {
                    return Err(format!(
                        "sample_limit exceeded: more than {} samples after metric relabeling",
                        self.sample_limit
                    ));
                }
            }
        }
        Ok((out, scraped))
    }

    fn check_limits(&self, labels: &Labels) -> Result<(), String> {
        let sc = self;
        if sc.label_limit > 0 && labels.len() as u64 + 1 > sc.label_limit {
            return Err(format!(
                "label_limit exceeded: a sample has {} labels (limit {})",
                labels.len() + 1,
                sc.label_limit
            ));
        }
        for (k, v) in labels {
            if sc.label_name_length_limit > 0 && k.len() as u64 > sc.label_name_length_limit {
                return Err(format!(
                    "label_name_length_limit exceeded: {k:?} (limit {})",
                    sc.label_name_length_limit
                ));
            }
            if sc.label_value_length_limit > 0 && v.len() as u64 > sc.label_value_length_limit {
                return Err(format!(
                    "label_value_length_limit exceeded: the value of {k:?} has {} bytes (limit {})",
                    v.len(),
                    sc.label_value_length_limit
                ));
            }
        }
        Ok(())
    }
}

/// Adds the target's labels to a sample's: with `honor_labels` the sample's own win; without,
/// a clashing sample label is kept as `exported_<name>` (as Prometheus does).
pub fn join_target_labels(labels: &mut Labels, target: &Labels, honor: bool) {
    for (k, v) in target {
        match labels.iter().position(|(n, _)| n == k) {
            None => labels.push((k.clone(), v.clone())),
            Some(_) if honor => {}
            Some(i) => {
                let mut renamed = format!("exported_{k}");
                while labels.iter().any(|(n, _)| *n == renamed) {
                    renamed = format!("exported_{renamed}");
                }
                if let Some(l) = labels.get_mut(i) {
                    l.0 = renamed;
                }
                labels.push((k.clone(), v.clone()));
            }
        }
    }
}
