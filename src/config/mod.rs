//! Collector-shaped configuration: load, expand, merge, type, validate.
//!
//! The flow is `files → YAML values → ${env} expansion → deep merge (later file wins) → typed
//! component configs → pure validation`. Every step collects problems instead of stopping at the
//! first, so `otelgw validate` lists them all, each with its path (`exporters.otlp/tempo.timeout`).
//! Nothing here does I/O beyond reading the files: `build()` on the components comes later.

pub mod env;
mod validate;

pub use validate::downstream;

use validate::validate;

pub use crate::component::{
    to_value, typed, units, BuildError, ComponentId, Diagnostics, Issue, PipelineId,
};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value};

use crate::component::units::Duration;
use crate::connectors::ConnectorConfig;
use crate::exporters::ExporterConfig;
use crate::extensions::ExtensionConfig;
use crate::processors::ProcessorConfig;
use crate::receivers::ReceiverConfig;

/// The embedded default config (`pipelines/quickstart.yaml`), used when no `--config` is given.
pub const QUICKSTART_YAML: &str = include_str!("../../pipelines/quickstart.yaml");

/// The config was invalid; every problem is listed.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} error(s)):", self.errors.len())?;
        for e in &self.errors {
            writeln!(f, "  error: {e}")?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        Ok(())
    }
}

/// A validated pipeline: every id names a component of the config that supports the
/// pipeline's signal (a config with any other reference does not validate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSpec {
    pub receivers: Vec<ComponentId>,
    /// In the order they run.
    pub processors: Vec<ComponentId>,
    pub exporters: Vec<ComponentId>,
}

/// `service.pipelines.<id>` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Receiver ids feeding this pipeline.
    pub receivers: Vec<String>,
    /// Processor ids, run in this order.
    pub processors: Vec<String>,
    /// Exporter ids this pipeline fans out to.
    pub exporters: Vec<String>,
}

/// `service.telemetry.logs`, with the Collector's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsTelemetry {
    /// `trace`, `debug`, `info`, `warn`, `error`, or a full `tracing` filter directive.
    pub level: String,
    /// `console` (human text) or `json`.
    pub encoding: LogEncoding,
    /// Where logs go: `stderr` (default) or `stdout` (one of them; the Collector's file paths
    /// are not supported).
    pub output_paths: Vec<String>,
    /// The Collector's zap settings, accepted so its configs validate; they have no effect in
    /// otelgw (validation warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_output_paths: Option<serde_norway::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<serde_norway::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_fields: Option<serde_norway::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub development: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_caller: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_stacktrace: Option<bool>,
}

impl Default for LogsTelemetry {
    fn default() -> Self {
        LogsTelemetry {
            level: "info".into(),
            encoding: LogEncoding::Console,
            output_paths: vec!["stderr".into()],
            error_output_paths: None,
            sampling: None,
            initial_fields: None,
            development: None,
            disable_caller: None,
            disable_stacktrace: None,
        }
    }
}

impl LogsTelemetry {
    /// True when logs go to stdout (`output_paths: [stdout]`), else stderr.
    pub fn to_stdout(&self) -> bool {
        self.output_paths.first().is_some_and(|p| p == "stdout")
    }

    fn validate(&self, path: &str, diag: &mut Diagnostics) {
        match self.output_paths.as_slice() {
            [p] if p == "stderr" || p == "stdout" => {}
            [] => diag.error(format!("{path}.output_paths"), "name stderr or stdout"),
            _ => diag.error(
                format!("{path}.output_paths"),
                "otelgw writes logs to one of stderr or stdout (file paths are not supported)",
            ),
        }
        diag.warn_inert(
            path,
            &[
                ("error_output_paths", self.error_output_paths.is_some()),
                ("sampling", self.sampling.is_some()),
                ("initial_fields", self.initial_fields.is_some()),
                ("development", self.development.is_some()),
                ("disable_caller", self.disable_caller.is_some()),
                ("disable_stacktrace", self.disable_stacktrace.is_some()),
            ],
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogEncoding {
    Console,
    Json,
}

/// `service.telemetry.metrics`: where the admin listener (`/metrics`, health) serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTelemetry {
    /// Admin listener address; `/metrics`, `/healthz`, `/readyz` are served here (the
    /// Collector's older key; a `pull` reader below sets it too).
    pub address: String,
    /// Which self-metrics exist for readers: `none` (the admin listener is off too), `basic`
    /// (items in and out of every component, queues, drops), `normal` (default) and `detailed`
    /// (every metric otelgw has).
    pub level: String,
    /// The Collector's metric readers. A `pull` reader with a `prometheus` exporter (the form
    /// the otelcol-contrib image ships) serves `/metrics` on its `host:port`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<MetricReader>,
}

impl Default for MetricsTelemetry {
    fn default() -> Self {
        MetricsTelemetry {
            address: "127.0.0.1:8888".into(),
            level: "normal".into(),
            readers: vec![],
        }
    }
}

/// One entry of `service.telemetry.metrics.readers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricReader {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullReader>,
    /// A push reader: otelgw sends its own metrics by OTLP every `interval`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periodic: Option<crate::telemetry::push::PeriodicReader>,
}

/// `readers[].pull`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullReader {
    pub exporter: PullExporter,
}

/// `readers[].pull.exporter`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullExporter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusReader>,
}

/// `readers[].pull.exporter.prometheus`, the Collector's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusReader {
    pub host: String,
    pub port: u16,
    /// Accepted; otelgw's self-metric names carry no unit suffixes anyway.
    pub without_units: bool,
    /// Accepted; no effect (names are the Collector's, as documented).
    pub without_type_suffix: bool,
    /// Accepted; no effect (self-metrics carry no scope labels).
    pub without_scope_info: bool,
    /// Accepted; no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_resource_constant_labels: Option<serde_norway::Value>,
}

impl Default for PrometheusReader {
    fn default() -> Self {
        PrometheusReader {
            host: "127.0.0.1".into(),
            port: 8888,
            without_units: false,
            without_type_suffix: false,
            without_scope_info: false,
            with_resource_constant_labels: None,
        }
    }
}

impl MetricsTelemetry {
    /// Applies the readers: a `pull` Prometheus reader sets the listen address.
    fn apply_readers(&mut self, path: &str, diag: &mut Diagnostics) {
        if crate::telemetry::metrics::Level::parse(&self.level).is_none() {
            diag.error(
                format!("{path}.level"),
                format!(
                    "unknown level {:?} (none, basic, normal or detailed)",
                    self.level
                ),
            );
        }
        let mut pulls = 0;
        for (i, r) in self.readers.iter().enumerate() {
            let p = format!("{path}.readers[{i}]");
            match (&r.pull, &r.periodic) {
                (Some(pull), None) => match &pull.exporter.prometheus {
                    Some(prom) => {
                        pulls += 1;
                        if pulls > 1 {
                            diag.error(p, "otelgw serves its metrics on one pull reader");
                            continue;
                        }
                        let host = if prom.host.contains(':') {
                            format!("[{}]", prom.host)
                        } else {
                            prom.host.clone()
                        };
                        self.address = format!("{host}:{}", prom.port);
                    }
                    None => diag.error(
                        format!("{p}.pull.exporter"),
                        "set prometheus (the only pull exporter)",
                    ),
                },
                (None, Some(periodic)) => periodic.validate(&format!("{p}.periodic"), diag),
                _ => diag.error(p, "set exactly one of pull or periodic"),
            }
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub logs: LogsTelemetry,
    pub metrics: MetricsTelemetry,
    /// Resource attributes for self-telemetry (the Collector's key): the resource of the
    /// metrics a `periodic` reader pushes (`service.name` defaults to `otelgw`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resource: BTreeMap<String, serde_norway::Value>,
}

/// `service`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Extension ids to start.
    pub extensions: Vec<String>,
    /// `signal[/name]` → pipeline.
    pub pipelines: BTreeMap<String, PipelineConfig>,
    pub telemetry: TelemetryConfig,
    /// How long a stop (SIGTERM, SIGINT, reload) waits for queued data to reach the exporters.
    pub shutdown_timeout: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            extensions: vec![],
            pipelines: BTreeMap::new(),
            telemetry: TelemetryConfig::default(),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// A fully typed and validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub receivers: BTreeMap<ComponentId, ReceiverConfig>,
    pub processors: BTreeMap<ComponentId, ProcessorConfig>,
    pub exporters: BTreeMap<ComponentId, ExporterConfig>,
    pub connectors: BTreeMap<ComponentId, ConnectorConfig>,
    pub extensions: BTreeMap<ComponentId, ExtensionConfig>,
    pub service: ServiceConfig,
    /// The pipelines, validated, in the same order as `service.pipelines`.
    pub pipelines: Vec<(PipelineId, PipelineSpec)>,
    pub warnings: Vec<Issue>,
}

/// A config source: a name for messages and its YAML text.
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Loads and validates config files (deep-merged in order; later wins).
pub fn load_files<P: AsRef<Path>>(paths: &[P]) -> Result<Config, ConfigError> {
    let mut sources = Vec::new();
    let mut diag = Diagnostics::default();
    for p in paths {
        let p = p.as_ref();
        match std::fs::read_to_string(p) {
            Ok(text) => sources.push(Source {
                name: p.display().to_string(),
                text,
            }),
            Err(e) => diag.error(
                p.display().to_string(),
                format!("cannot read config file: {e}"),
            ),
        }
    }
    if !diag.errors.is_empty() {
        return Err(ConfigError {
            errors: diag.errors,
            warnings: diag.warnings,
        });
    }
    load_sources(&sources, &|k| std::env::var(k).ok())
}

/// Loads and validates config sources with the given environment.
pub fn load_sources(
    sources: &[Source],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut diag = Diagnostics::default();
    let merged = merge_sources(sources, env, &mut diag);
    // the last source decides whether the merged root is a mapping (merging replaces a
    // non-mapping), so a root that is not one is reported at that source's name
    let root_name = sources.last().map_or("config", |s| s.name.as_str());
    let config = match merged {
        Some(v) => from_value(v, root_name, &mut diag),
        None => None,
    };
    match config {
        Some(mut c) if diag.errors.is_empty() => {
            c.warnings = diag.warnings;
            Ok(c)
        }
        _ => Err(ConfigError {
            errors: diag.errors,
            warnings: diag.warnings,
        }),
    }
}

fn merge_sources(
    sources: &[Source],
    env: &dyn Fn(&str) -> Option<String>,
    diag: &mut Diagnostics,
) -> Option<Value> {
    let mut merged = Value::Mapping(Mapping::new());
    let mut ok = true;
    for src in sources {
        let mut v: Value = match serde_norway::from_str(&src.text) {
            Ok(Value::Null) => Value::Mapping(Mapping::new()),
            Ok(v) => v,
            Err(e) => {
                diag.error(src.name.clone(), format!("invalid yaml: {e}"));
                ok = false;
                continue;
            }
        };
        let mut unset = Vec::new();
        env::expand_value(&mut v, env, &mut unset);
        unset.sort();
        unset.dedup();
        for name in unset {
            diag.warn(
                src.name.clone(),
                format!("environment variable {name} is not set; it expanded to an empty string"),
            );
        }
        deep_merge(&mut merged, v);
    }
    ok.then_some(merged)
}

/// Merges `over` into `base`: mappings merge key by key, anything else is replaced.
pub fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn section(root: &mut Mapping, key: &str, diag: &mut Diagnostics) -> Vec<(String, Value)> {
    entries(
        key,
        root.remove(key).unwrap_or(Value::Null),
        "a mapping of component id to settings",
        diag,
    )
}

/// The entries of the mapping at `path` (none for null), keys as strings; anything else is
/// reported at `path` as not being `what`.
fn entries(path: &str, v: Value, what: &str, diag: &mut Diagnostics) -> Vec<(String, Value)> {
    match v {
        Value::Null => vec![],
        Value::Mapping(m) => m
            .into_iter()
            .filter_map(|(k, v)| match k {
                Value::String(s) => Some((s, v)),
                other => {
                    diag.error(path, format!("keys must be strings, got {other:?}"));
                    None
                }
            })
            .collect(),
        _ => {
            diag.error(path, format!("must be {what}"));
            vec![]
        }
    }
}

fn from_value(root: Value, root_name: &str, diag: &mut Diagnostics) -> Option<Config> {
    let mut root = match root {
        Value::Mapping(m) => m,
        _ => {
            diag.error(root_name, "the config must be a mapping with receivers, processors, exporters, extensions, service");
            return None;
        }
    };
    // Ids whose settings failed to parse are still "defined": references to them must not add
    // a misleading "not defined" error on top of the real one.
    let mut broken = BTreeSet::new();
    let receivers = typed_section(
        &mut root,
        "receivers",
        diag,
        &mut broken,
        ReceiverConfig::from_value,
    );
    let processors = typed_section(
        &mut root,
        "processors",
        diag,
        &mut broken,
        ProcessorConfig::from_value,
    );
    let exporters = typed_section(
        &mut root,
        "exporters",
        diag,
        &mut broken,
        ExporterConfig::from_value,
    );
    let extensions = typed_section(
        &mut root,
        "extensions",
        diag,
        &mut broken,
        ExtensionConfig::from_value,
    );
    let service = service_section(
        root.remove("service").unwrap_or(Value::Null),
        diag,
        &mut broken,
    );
    let connectors = typed_section(
        &mut root,
        "connectors",
        diag,
        &mut broken,
        ConnectorConfig::from_value,
    );
    for (k, _) in root {
        // every issue has a path: an empty key is shown quoted
        let k = match k.as_str() {
            Some("") => "\"\"".to_string(),
            Some(s) => s.to_string(),
            None => format!("{k:?}"),
        };
        diag.error(
            k,
            "unknown top-level key (expected receivers, processors, exporters, connectors, extensions, service)",
        );
    }
    let mut cfg = Config {
        receivers,
        processors,
        exporters,
        connectors,
        extensions,
        service,
        pipelines: vec![],
        warnings: vec![],
    };
    validate(&mut cfg, &broken, diag);
    Some(cfg)
}

/// `service`, typed key by key (and `service.telemetry` and each pipeline on their own), so
/// one unknown or bad key is reported at its path and everything else is still checked.
/// A pipeline whose body does not parse goes into `broken` as `service.pipelines.<id>`, so it
/// is neither checked further nor reported as missing.
fn service_section(
    v: Value,
    diag: &mut Diagnostics,
    broken: &mut BTreeSet<String>,
) -> ServiceConfig {
    let mut out = ServiceConfig::default();
    for (key, v) in entries("service", v, "a mapping", diag) {
        let path = format!("service.{key}");
        match key.as_str() {
            "extensions" => {
                if let Some(e) = typed(&path, v, diag) {
                    out.extensions = e;
                }
            }
            "shutdown_timeout" => {
                if let Some(d) = typed(&path, v, diag) {
                    out.shutdown_timeout = d;
                }
            }
            "pipelines" => {
                for (id, p) in entries(&path, v, "a mapping of pipeline id to pipeline", diag) {
                    let ppath = format!("{path}.{id}");
                    match typed(&ppath, p, diag) {
                        Some(parsed) => {
                            out.pipelines.insert(id, parsed);
                        }
                        None => {
                            broken.insert(ppath);
                        }
                    }
                }
            }
            "telemetry" => out.telemetry = telemetry_section(&path, v, diag),
            _ => diag.error(
                path,
                "unknown key (expected extensions, pipelines, telemetry, shutdown_timeout)",
            ),
        }
    }
    out
}

/// `service.telemetry`, each block on its own.
fn telemetry_section(path: &str, v: Value, diag: &mut Diagnostics) -> TelemetryConfig {
    let mut out = TelemetryConfig::default();
    for (key, v) in entries(path, v, "a mapping", diag) {
        let p = format!("{path}.{key}");
        match key.as_str() {
            "logs" => {
                if let Some(l) = typed::<LogsTelemetry>(&p, v, diag) {
                    l.validate(&p, diag);
                    out.logs = l;
                }
            }
            "metrics" => {
                if let Some(mut m) = typed::<MetricsTelemetry>(&p, v, diag) {
                    m.apply_readers(&p, diag);
                    out.metrics = m;
                }
            }
            "resource" => {
                if let Some(r) = typed::<BTreeMap<String, Value>>(&p, v, diag) {
                    out.resource = r;
                }
            }
            _ => diag.error(
                p,
                "not supported by otelgw (supported: logs, metrics, resource)",
            ),
        }
    }
    out
}

fn typed_section<T>(
    root: &mut Mapping,
    key: &str,
    diag: &mut Diagnostics,
    broken: &mut BTreeSet<String>,
    parse: fn(&ComponentId, &str, Value, &mut Diagnostics) -> Option<T>,
) -> BTreeMap<ComponentId, T> {
    let mut out = BTreeMap::new();
    for (id, value) in section(root, key, diag) {
        let path = format!("{key}.{id}");
        match ComponentId::parse(&id) {
            Ok(cid) => match parse(&cid, &path, value, diag) {
                Some(c) => {
                    out.insert(cid, c);
                }
                None => {
                    broken.insert(id);
                }
            },
            Err(e) => diag.error(path, e),
        }
    }
    out
}

/// Keys whose values are secrets in `print-config` output.
const SECRET_KEYS: &[&str] = &[
    "password",
    "token",
    "secret",
    "authorization",
    "api_key",
    "apikey",
    "key_pem",
    "bearer",
    // htpasswd lines (basicauth)
    "inline",
];

/// Replaces secret values in a serialized config with `[REDACTED]`.
pub fn redact(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let key = k.as_str().unwrap_or_default().to_ascii_lowercase();
                let secret = SECRET_KEYS.iter().any(|s| key.contains(s)) && !key.ends_with("_file");
                if secret
                    && !val.is_null()
                    && !matches!(val, Value::Mapping(_) | Value::Sequence(_))
                {
                    *val = Value::String("[REDACTED]".into());
                } else if let (true, Value::Sequence(items)) = (secret, &mut *val) {
                    // a list of secrets (`tokens`)
                    for item in items.iter_mut() {
                        if !matches!(item, Value::Mapping(_) | Value::Sequence(_)) {
                            *item = Value::String("[REDACTED]".into());
                        }
                    }
                } else if key == "headers" {
                    if let Value::Mapping(h) = val {
                        for (hk, hv) in h.iter_mut() {
                            let hk = hk.as_str().unwrap_or_default().to_ascii_lowercase();
                            if SECRET_KEYS.iter().any(|s| hk.contains(s)) || hk.contains("key") {
                                *hv = Value::String("[REDACTED]".into());
                            }
                        }
                    }
                } else {
                    redact(val);
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(redact),
        _ => {}
    }
}

impl Config {
    /// The resolved config (defaults filled in) as YAML, secrets redacted.
    pub fn to_redacted_yaml(&self) -> String {
        fn section<T>(m: &BTreeMap<ComponentId, T>, f: impl Fn(&T) -> Value) -> Value {
            let mut out = Mapping::new();
            for (id, c) in m {
                out.insert(Value::String(id.to_string()), f(c));
            }
            Value::Mapping(out)
        }
        let mut root = Mapping::new();
        root.insert(
            "receivers".into(),
            section(&self.receivers, |c| c.to_value()),
        );
        root.insert(
            "processors".into(),
            section(&self.processors, |c| c.to_value()),
        );
        root.insert(
            "exporters".into(),
            section(&self.exporters, |c| c.to_value()),
        );
        if !self.connectors.is_empty() {
            root.insert(
                "connectors".into(),
                section(&self.connectors, |c| c.to_value()),
            );
        }
        root.insert(
            "extensions".into(),
            section(&self.extensions, |c| c.to_value()),
        );
        root.insert(
            "service".into(),
            serde_norway::to_value(&self.service).unwrap_or(Value::Null),
        );
        let mut v = Value::Mapping(root);
        redact(&mut v);
        serde_norway::to_string(&v).unwrap_or_default()
    }

    /// The extensions `service.extensions` starts, in order.
    pub fn started_extensions(&self) -> Vec<(&ComponentId, &ExtensionConfig)> {
        self.service
            .extensions
            .iter()
            .filter_map(|e| ComponentId::parse(e).ok())
            .filter_map(|id| self.extensions.get_key_value(&id))
            .collect()
    }
}

#[cfg(test)]
mod tests;
