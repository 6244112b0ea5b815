//! Running `filelog`: one task per receiver. Every `poll_interval` it starts a poll of the
//! [`Tailer`] and takes batches off it until every file is at its end. Each batch becomes log
//! records (file attributes, the configured `attributes`/`resource`, then the operators) on a
//! blocking thread, and one `ExportLogsServiceRequest` enters the pipelines through an
//! [`Intake`]. Only when every pipeline accepted it are its offsets committed; a refusal pauses
//! the receiver and the same request is offered again with back-off. After a poll that
//! committed something, and at stop, the checkpoint is written (with `storage`).
//!
//! Self-metrics: `otelcol_fileconsumer_open_files`, `otelcol_fileconsumer_reading_files` (the
//! Collector's), `otelgw_filelog_truncated_records_total`, `otelgw_filelog_operator_errors_total`,
//! `otelgw_dropped_items_total{reason="operator"|"retry_expired"}`, and the intake's
//! request/item counters.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::operators::{Entry, Operators, OperatorsConfig};
use super::tail::{self, Batch, Options, Tailer};
use super::{Encoding, FileLogConfig};
use crate::component::{BuildError, Diagnostics, Signal};
use crate::data::{log_record_count, unix_nanos, Telemetry};
use crate::extensions::file_storage::FileStorageConfig;
use crate::receivers::intake::{Intake, Outcome};
use crate::receivers::{stopped, ReceiverContext};
use crate::telemetry::metrics::{Counter, Gauge};

/// Everything the blocking side owns: moved onto a blocking thread for each step.
struct State {
    tailer: Tailer,
    build: Build,
}

/// Turns a batch's records into log records.
pub struct Build {
    encoding: Encoding,
    operators: Option<Operators>,
    attributes: Map<String, Value>,
    resource: Map<String, Value>,
    file_name: bool,
    file_path: bool,
    name_resolved: bool,
    path_resolved: bool,
    record_number: bool,
}

impl Build {
    pub fn new(cfg: &FileLogConfig) -> Result<Build, String> {
        let json = |m: &std::collections::BTreeMap<String, serde_norway::Value>| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), serde_json::to_value(v).ok()?)))
                .collect::<Map<String, Value>>()
        };
        let operators = if cfg.operators.is_empty() {
            None
        } else {
            let mut diag = Diagnostics::default();
            let parsed = OperatorsConfig::parse(
                "operators",
                &serde_norway::Value::Sequence(cfg.operators.clone()),
                &mut diag,
            );
            if let Some(e) = diag.errors.first() {
                return Err(format!("{}: {}", e.path, e.message));
            }
            Some(parsed.build()?)
        };
        Ok(Build {
            encoding: cfg.encoding().unwrap_or(Encoding::Utf8),
            operators,
            attributes: json(&cfg.attributes),
            resource: json(&cfg.resource),
            file_name: cfg.include_file_name,
            file_path: cfg.include_file_path,
            name_resolved: cfg.include_file_name_resolved,
            path_resolved: cfg.include_file_path_resolved,
            record_number: cfg.include_file_record_number,
        })
    }

    /// The request for one batch (`None` when the operators dropped or held every record).
    pub fn request(&mut self, batch: &Batch, now_ns: u64) -> Option<ExportLogsServiceRequest> {
        let mut entries = Vec::with_capacity(batch.records());
        let mut raw = Vec::new();
        for f in &batch.files {
            let mut attrs = self.attributes.clone();
            let name = |p: &PathBuf| {
                Value::String(
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            };
            let text = |p: &PathBuf| Value::String(p.to_string_lossy().into_owned());
            if self.file_name {
                attrs.insert("log.file.name".into(), name(&f.path));
            }
            if self.file_path {
                attrs.insert("log.file.path".into(), text(&f.path));
            }
            if self.name_resolved {
                attrs.insert("log.file.name_resolved".into(), name(&f.resolved));
            }
            if self.path_resolved {
                attrs.insert("log.file.path_resolved".into(), text(&f.resolved));
            }
            for (i, rec) in f.records.iter().enumerate() {
                let mut attributes = attrs.clone();
                if self.record_number {
                    attributes.insert(
                        "log.file.record_number".into(),
                        Value::from(f.first_number + i as u64),
                    );
                }
                if self.encoding == Encoding::Nop {
                    raw.push((
                        AnyValue {
                            value: Some(any_value::Value::BytesValue(rec.bytes.clone())),
                        },
                        attributes,
                    ));
                    continue;
                }
                let entry = Entry {
                    body: Value::String(String::from_utf8_lossy(&rec.bytes).into_owned()),
                    attributes,
                    resource: self.resource.clone(),
                    ..Entry::default()
                };
                match &mut self.operators {
                    Some(ops) => ops.process(entry, now_ns, &mut entries),
                    None => entries.push(entry),
                }
            }
        }
        if let Some(ops) = &mut self.operators {
            ops.flush(now_ns, false, &mut entries);
        }
        let mut out = Grouped::default();
        for (body, attributes) in raw {
            out.push(
                &self.resource,
                LogRecord {
                    observed_time_unix_nano: now_ns,
                    body: Some(body),
                    attributes: key_values(attributes),
                    ..LogRecord::default()
                },
            );
        }
        for e in entries {
            let (resource, record) = log_record(e, now_ns);
            out.push(&resource, record);
        }
        out.finish()
    }

    /// What the operators hold: longer than their flush periods (when no batch is read), or
    /// all of it (at stop).
    fn flush_ops(&mut self, now_ns: u64, all: bool) -> Option<ExportLogsServiceRequest> {
        let ops = self.operators.as_mut()?;
        let mut entries = Vec::new();
        ops.flush(now_ns, all, &mut entries);
        let mut out = Grouped::default();
        for e in entries {
            let (resource, record) = log_record(e, now_ns);
            out.push(&resource, record);
        }
        out.finish()
    }

    fn operator_counts(&self) -> (u64, u64) {
        self.operators
            .as_ref()
            .map_or((0, 0), |o| (o.errors(), o.dropped()))
    }
}

/// Records grouped by resource, in first-seen order.
#[derive(Default)]
struct Grouped {
    index: HashMap<String, usize>,
    groups: Vec<ResourceLogs>,
}

impl Grouped {
    fn push(&mut self, resource: &Map<String, Value>, record: LogRecord) {
        let key = serde_json::to_string(resource).unwrap_or_default();
        let i = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                self.groups.push(ResourceLogs {
                    resource: Some(Resource {
                        attributes: key_values(resource.clone()),
                        ..Resource::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope::default()),
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                });
                self.index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        if let Some(s) = self
            .groups
            .get_mut(i)
            .and_then(|g| g.scope_logs.first_mut())
        {
            s.log_records.push(record);
        }
    }

    fn finish(self) -> Option<ExportLogsServiceRequest> {
        (!self.groups.is_empty()).then_some(ExportLogsServiceRequest {
            resource_logs: self.groups,
        })
    }
}

/// An operator entry as an OTLP log record and its resource.
fn log_record(e: Entry, now_ns: u64) -> (Map<String, Value>, LogRecord) {
    let record = LogRecord {
        time_unix_nano: e.timestamp.unwrap_or(0),
        observed_time_unix_nano: now_ns,
        severity_number: e.severity,
        severity_text: e.severity_text,
        body: Some(any(e.body)),
        attributes: key_values(e.attributes),
        flags: e.trace_flags,
        trace_id: e.trace_id,
        span_id: e.span_id,
        ..LogRecord::default()
    };
    (e.resource, record)
}

fn key_values(m: Map<String, Value>) -> Vec<KeyValue> {
    m.into_iter()
        .map(|(key, v)| KeyValue {
            key,
            value: Some(any(v)),
            ..KeyValue::default()
        })
        .collect()
}

/// A JSON value as an OTLP value (integers stay integers).
pub fn any(v: Value) -> AnyValue {
    let value = match v {
        Value::Null => None,
        Value::Bool(b) => Some(any_value::Value::BoolValue(b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(any_value::Value::IntValue(i)),
            None => n.as_f64().map(any_value::Value::DoubleValue),
        },
        Value::String(s) => Some(any_value::Value::StringValue(s)),
        Value::Array(a) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: a.into_iter().map(any).collect(),
        })),
        Value::Object(m) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: key_values(m),
        })),
    };
    AnyValue { value }
}

/// Self-metrics of one receiver.
struct Metrics {
    open: Gauge,
    reading: Gauge,
    truncated: Counter,
    operator_errors: Counter,
    operator_dropped: Counter,
    expired: Counter,
    rejected: Counter,
}

struct Run {
    id: String,
    intake: Intake,
    gate: Option<Arc<crate::admission::MemoryGate>>,
    poll: Duration,
    retry: super::RetryOnFailure,
    checkpoint: Option<(PathBuf, bool)>,
    metrics: Metrics,
}

/// Builds the tailer and operators and starts the receiver's task. `storage` is the
/// `file_storage` extension `storage` names, when set.
pub fn spawn(
    cfg: &FileLogConfig,
    ctx: &ReceiverContext,
    storage: Option<&FileStorageConfig>,
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, BuildError> {
    let id = ctx.id.to_string();
    let err = |e: String| BuildError::Other(format!("receiver {id}: {e}"));
    let opts = Options::new(cfg).map_err(err)?;
    let build = Build::new(cfg).map_err(err)?;
    let checkpoint = match storage {
        Some(s) => {
            let dir = s.component_dir("receiver", &id);
            std::fs::create_dir_all(&dir)
                .map_err(|e| err(format!("storage directory {}: {e}", dir.display())))?;
            Some((
                dir.join("checkpoints.json"),
                s.fsync != crate::extensions::file_storage::FsyncMode::Never,
            ))
        }
        None => None,
    };
    let restored = match &checkpoint {
        Some((p, _)) => tail::load(p).map_err(err)?,
        None => Vec::new(),
    };
    let labels: &[(&'static str, &str)] = &[("receiver", &id)];
    let metrics = Metrics {
        open: ctx.registry.gauge(
            "otelcol_fileconsumer_open_files",
            "Files currently open.",
            labels,
        ),
        reading: ctx.registry.gauge(
            "otelcol_fileconsumer_reading_files",
            "Files read in the last poll.",
            labels,
        ),
        truncated: ctx.registry.counter(
            "otelgw_filelog_truncated_records_total",
            "Records cut at max_log_size (the rest follows as further records).",
            labels,
        ),
        operator_errors: ctx.registry.counter(
            "otelgw_filelog_operator_errors_total",
            "Records an operator failed on (handled by its on_error).",
            labels,
        ),
        operator_dropped: dropped(ctx, &id, "operator"),
        expired: dropped(ctx, &id, "retry_expired"),
        rejected: dropped(ctx, &id, "rejected"),
    };
    tracing::info!(receiver = %id, include = ?cfg.include, restored = restored.len(), "filelog receiver started");
    let run = Run {
        intake: Intake::new(&ctx.registry, &id, "", Signal::Logs, ctx.logs.clone()),
        gate: ctx.gate.clone(),
        poll: cfg.poll_interval.get().max(Duration::from_millis(1)),
        retry: cfg.retry_on_failure.clone(),
        checkpoint,
        metrics,
        id,
    };
    let state = State {
        tailer: Tailer::new(opts, restored),
        build,
    };
    Ok(tokio::spawn(run.run(state, stop)))
}

fn dropped(ctx: &ReceiverContext, id: &str, reason: &str) -> Counter {
    crate::telemetry::metrics::dropped_items(&ctx.registry, id, reason, Signal::Logs)
}

/// Moves a counter up to a running total kept by the blocking side.
fn catch_up(c: &Counter, total: u64) {
    c.add(total.saturating_sub(c.get()));
}

/// Runs `f` on a blocking thread with the state, and gives the state back.
async fn blocking<T: Send + 'static>(
    state: State,
    f: impl FnOnce(&mut State) -> T + Send + 'static,
) -> Option<(State, T)> {
    tokio::task::spawn_blocking(move || {
        let mut state = state;
        let out = f(&mut state);
        (state, out)
    })
    .await
    .ok()
}

enum Delivery {
    Accepted,
    /// Refused for longer than `max_elapsed_time` (with `retry_on_failure.enabled`).
    Expired,
    /// The pipelines failed it permanently (retrying the same records will not help).
    Rejected,
    Stopped,
}

/// Batches between checkpoints while a backlog is read (a kill re-reads at most this many).
const CHECKPOINT_EVERY: usize = 16;

impl Run {
    async fn run(self, state: State, mut stop: watch::Receiver<bool>) {
        let mut state = Some(state);
        let mut committed = false;
        loop {
            let Some(s) = state.take() else { return };
            let Some((s, ())) = blocking(s, |s| s.tailer.begin_poll()).await else {
                return;
            };
            state = Some(s);
            let mut reading = std::collections::HashSet::new();
            let mut batches = 0usize;
            loop {
                if *stop.borrow() {
                    self.finish(state.take()).await;
                    return;
                }
                let Some(s) = state.take() else { return };
                let step = blocking(s, |s| {
                    let now = unix_nanos(SystemTime::now());
                    let batch = s.tailer.next_batch();
                    let req = match &batch {
                        Some(b) => s.build.request(b, now),
                        // idle: what recombine and partial container lines held too long
                        None => s.build.flush_ops(now, false),
                    };
                    let counts = s.build.operator_counts();
                    (batch, req, counts, s.tailer.stats)
                })
                .await;
                let Some((s, (batch, req, (op_errors, op_dropped), stats))) = step else {
                    return;
                };
                self.metrics.open.set(stats.open_files as i64);
                catch_up(&self.metrics.truncated, stats.truncated);
                catch_up(&self.metrics.operator_errors, op_errors);
                catch_up(&self.metrics.operator_dropped, op_dropped);
                state = Some(s);
                let records = req.as_ref().map_or(0, log_record_count);
                let delivered = match req {
                    Some(req) => self.deliver(req, &mut stop).await,
                    None => Delivery::Accepted,
                };
                let Some(batch) = batch else {
                    // flushed operator state (offsets committed earlier): not retried at stop
                    if let Delivery::Expired | Delivery::Rejected | Delivery::Stopped = delivered {
                        self.metrics.rejected.add(records);
                    }
                    break;
                };
                reading.extend(batch.files.iter().map(|f| f.reader));
                match delivered {
                    Delivery::Accepted => {}
                    Delivery::Expired => self.metrics.expired.add(records),
                    Delivery::Rejected => self.metrics.rejected.add(records),
                    Delivery::Stopped => {
                        // not committed: read again after a restart
                        self.finish(state.take()).await;
                        return;
                    }
                }
                if let Some(s) = state.as_mut() {
                    s.tailer.commit(&batch);
                }
                committed = true;
                batches += 1;
                if batches % CHECKPOINT_EVERY == 0 {
                    state = self.save(state.take()).await;
                }
            }
            self.metrics.reading.set(reading.len() as i64);
            if committed {
                committed = false;
                state = self.save(state.take()).await;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = stopped(&mut stop) => {
                    self.finish(state.take()).await;
                    return;
                }
            }
        }
    }

    /// Offers a request until the pipelines accept it (or it expires, or the receiver stops).
    async fn deliver(
        &self,
        req: ExportLogsServiceRequest,
        stop: &mut watch::Receiver<bool>,
    ) -> Delivery {
        let started = Instant::now();
        let mut wait = self.retry.initial_interval.get();
        let mut logged = false;
        loop {
            let offer = self
                .intake
                .offer_outcome(Telemetry::Logs(req.clone()), self.gate.as_ref());
            let outcome = tokio::select! {
                o = offer => o,
                _ = stopped(stop) => return Delivery::Stopped,
            };
            match outcome {
                Outcome::Accepted { .. } => {
                    if logged {
                        tracing::info!(receiver = %self.id, "filelog: pipelines accept again; reading resumes");
                    }
                    return Delivery::Accepted;
                }
                Outcome::Failed { message } | Outcome::Invalid { message } => {
                    tracing::warn!(receiver = %self.id, error = %message, "filelog: pipelines rejected a batch permanently; its records are dropped (counted)");
                    return Delivery::Rejected;
                }
                Outcome::Refused { message: e, .. } | Outcome::Unavailable { message: e } => {
                    if !logged {
                        logged = true;
                        tracing::warn!(receiver = %self.id, error = %e, "filelog: pipelines refused a batch; reading paused, retrying");
                    }
                    let max = self.retry.max_elapsed_time.get();
                    if self.retry.enabled && !max.is_zero() && started.elapsed() >= max {
                        tracing::warn!(receiver = %self.id, "filelog: batch refused for max_elapsed_time; dropped");
                        return Delivery::Expired;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(stop) => return Delivery::Stopped,
            }
            wait = (wait * 2).min(self.retry.max_interval.get());
        }
    }

    /// Writes the checkpoint (with `storage`).
    async fn save(&self, state: Option<State>) -> Option<State> {
        let s = state?;
        let Some((path, sync)) = self.checkpoint.clone() else {
            return Some(s);
        };
        let id = self.id.clone();
        blocking(s, move |s| {
            if let Err(e) = tail::save(&path, &s.tailer.checkpoint(), sync) {
                tracing::warn!(receiver = %id, path = %path.display(), error = %e, "filelog: checkpoint not written");
            }
        })
        .await
        .map(|(s, ())| s)
    }

    /// At stop: what recombine still holds goes out once (not retried), then the checkpoint.
    async fn finish(&self, state: Option<State>) {
        let Some(mut s) = state else { return };
        if let Some(req) = s.build.flush_ops(unix_nanos(SystemTime::now()), true) {
            let n = log_record_count(&req);
            if self
                .intake
                .offer(Telemetry::Logs(req), self.gate.as_ref())
                .await
                .is_err()
            {
                tracing::warn!(receiver = %self.id, "filelog: records held by recombine at stop were refused");
                self.metrics.rejected.add(n);
            }
        }
        self.save(Some(s)).await;
        tracing::info!(receiver = %self.id, "filelog receiver stopped");
    }
}
