//! The `prometheus` receiver: scrapes `/metrics` endpoints into metrics pipelines, configured
//! as the Collector's receiver is — `config:` holds a Prometheus configuration (`global` and
//! `scrape_configs`) with Prometheus' own key names.
//!
//! The supported subset of a scrape config: `job_name`, `scrape_interval`, `scrape_timeout`,
//! `metrics_path`, `scheme`, `params`, `honor_labels`, `honor_timestamps`, `static_configs`,
//! `file_sd_configs` (re-read every `refresh_interval` when a file changed), `basic_auth`,
//! `authorization`, `tls_config`, `follow_redirects`, `sample_limit`, `label_limit`,
//! `label_name_length_limit`, `label_value_length_limit`, `body_size_limit`, `target_limit`,
//! `relabel_configs` and `metric_relabel_configs` (every Prometheus action, [`relabel`]). A key
//! otelgw does not implement is a validation error at its path, never ignored.
//!
//! Files: [`exposition`] parses text 0.0.4 and OpenMetrics 1.0, [`relabel`] applies relabeling,
//! [`targets`] turns static and file service discovery into targets, [`translate`] turns a
//! scrape into OTLP (types, start times, staleness, resource), [`scrape`] runs the scrape loops
//! and feeds the pipelines; this file the config.

pub mod exposition;
pub mod relabel;
pub mod scrape;
pub mod targets;
pub mod translate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::component::units::{ByteSize, Duration};
use crate::component::Diagnostics;
use relabel::RelabelConfig;

pub use scrape::spawn;

/// `receivers.prometheus`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusReceiverConfig {
    /// The Prometheus configuration: `global` and `scrape_configs`.
    pub config: PromConfig,
    /// Also report `scrape_body_size_bytes`, `scrape_sample_limit` and
    /// `scrape_timeout_seconds` per target.
    pub report_extra_scrape_metrics: bool,
    /// Collector keys accepted so its configs validate, without effect in otelgw (validation
    /// warns): start times come from `_created` or the first scrape; names are kept as scraped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trim_metric_suffixes: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_start_time_metric: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time_metric_regex: Option<String>,
    /// Not supported (validation error): the Collector's target allocator and API server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_allocator: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_server: Option<Value>,
}

/// `config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromConfig {
    pub global: Global,
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// `config.global`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Global {
    /// Default 1m, as Prometheus.
    pub scrape_interval: Duration,
    /// Default 10s, as Prometheus.
    pub scrape_timeout: Duration,
    /// Labels added to every scraped sample that does not have them.
    pub external_labels: BTreeMap<String, String>,
    /// Accepted (rules are not evaluated by otelgw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation_interval: Option<Duration>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            external_labels: BTreeMap::new(),
            evaluation_interval: None,
        }
    }
}

/// `static_configs[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs[]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    /// JSON (`.json`) or YAML (`.yml`, `.yaml`) files; `*` may appear in the file name.
    pub files: Vec<String>,
    /// How often the files are checked for changes. Default 5m, as Prometheus.
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// `authorization`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// Default `Bearer`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

impl Default for Authorization {
    fn default() -> Self {
        Authorization {
            kind: "Bearer".into(),
            credentials: None,
            credentials_file: None,
        }
    }
}

/// `tls_config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromTlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

/// `scrape_configs[]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    pub job_name: String,
    /// Default: `global.scrape_interval`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<Duration>,
    /// Default: `global.scrape_timeout`, at most the interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<Duration>,
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    /// Scraped labels win over target labels (else they are kept as `exported_<name>`).
    pub honor_labels: bool,
    /// Use the timestamps the target exposes (else the scrape's time).
    pub honor_timestamps: bool,
    pub follow_redirects: bool,
    /// Accepted; HTTP/2 is negotiated by TLS ALPN.
    pub enable_http2: bool,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<PromTlsConfig>,
    /// Most samples a scrape may have after metric relabeling; more fails the scrape (0: no
    /// limit).
    pub sample_limit: u64,
    /// Most labels per sample; more fails the scrape (0: no limit).
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    /// Most targets after relabeling; more fails every target of the job (0: no limit).
    pub target_limit: u64,
    /// Largest uncompressed body; a larger one fails the scrape. otelgw's default is 50MiB
    /// (Prometheus has none) so one target cannot exhaust memory; `0` restores no limit.
    pub body_size_limit: ByteSize,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            job_name: String::new(),
            scrape_interval: None,
            scrape_timeout: None,
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::new(),
            honor_labels: false,
            honor_timestamps: true,
            follow_redirects: true,
            enable_http2: true,
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            basic_auth: None,
            authorization: None,
            tls_config: None,
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            target_limit: 0,
            body_size_limit: ByteSize::mib(50),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
        }
    }
}

impl ScrapeConfig {
    /// The interval, from the job or `global`.
    pub fn interval(&self, g: &Global) -> std::time::Duration {
        self.scrape_interval.unwrap_or(g.scrape_interval).get()
    }

    /// The timeout, from the job or `global`, never longer than the interval.
    pub fn timeout(&self, g: &Global) -> std::time::Duration {
        self.scrape_timeout
            .unwrap_or(g.scrape_timeout)
            .get()
            .min(self.interval(g))
    }
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PrometheusReceiverConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        let c = format!("{path}.config");
        diag.warn_inert(
            path,
            &[
                (
                    "trim_metric_suffixes",
                    self.trim_metric_suffixes == Some(true),
                ),
                (
                    "use_start_time_metric",
                    self.use_start_time_metric == Some(true),
                ),
                (
                    "start_time_metric_regex",
                    self.start_time_metric_regex.is_some(),
                ),
            ],
        );
        for (key, set) in [
            ("target_allocator", self.target_allocator.is_some()),
            ("api_server", self.api_server.is_some()),
        ] {
            if set {
                diag.error(
                    format!("{path}.{key}"),
                    "not supported by otelgw; list targets in scrape_configs (static_configs or file_sd_configs)",
                );
            }
        }
        let g = &self.config.global;
        if g.scrape_interval.is_zero() {
            diag.error(
                format!("{c}.global.scrape_interval"),
                "must be greater than 0",
            );
        }
        if g.scrape_timeout.is_zero() {
            diag.error(
                format!("{c}.global.scrape_timeout"),
                "must be greater than 0",
            );
        }
        for k in g.external_labels.keys() {
            if !valid_label_name(k) {
                diag.error(
                    format!("{c}.global.external_labels.{k}"),
                    "not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                );
            }
        }
        if self.config.scrape_configs.is_empty() {
            diag.error(
                format!("{c}.scrape_configs"),
                "at least one scrape config is required",
            );
        }
        let mut jobs = std::collections::HashSet::new();
        for (i, sc) in self.config.scrape_configs.iter().enumerate() {
            let p = format!("{c}.scrape_configs[{i}]");
            sc.validate(&p, g, diag);
            if !sc.job_name.is_empty() && !jobs.insert(sc.job_name.as_str()) {
                diag.error(
                    format!("{p}.job_name"),
                    format!("job {:?} is defined twice", sc.job_name),
                );
            }
        }
    }
}

impl ScrapeConfig {
    fn validate(&self, p: &str, g: &Global, diag: &mut Diagnostics) {
        if self.job_name.is_empty() {
            diag.error(format!("{p}.job_name"), "required");
        }
        if self.scrape_interval.is_some_and(|d| d.is_zero()) {
            diag.error(format!("{p}.scrape_interval"), "must be greater than 0");
        }
        if let Some(t) = self.scrape_timeout {
            if t.is_zero() {
                diag.error(format!("{p}.scrape_timeout"), "must be greater than 0");
            } else if t.get() > self.interval(g) {
                diag.error(
                    format!("{p}.scrape_timeout"),
                    "must not be greater than the scrape interval",
                );
            }
        }
        if !matches!(self.scheme.as_str(), "http" | "https") {
            diag.error(format!("{p}.scheme"), "must be http or https");
        }
        if !self.metrics_path.starts_with('/') {
            diag.error(format!("{p}.metrics_path"), "must start with /");
        }
        if self.static_configs.is_empty() && self.file_sd_configs.is_empty() {
            diag.error(
                p,
                "no targets: set static_configs or file_sd_configs (other service discovery is not supported by otelgw)",
            );
        }
        for (i, s) in self.static_configs.iter().enumerate() {
            for (j, t) in s.targets.iter().enumerate() {
                if t.is_empty() || t.contains('/') {
                    diag.error(
                        format!("{p}.static_configs[{i}].targets[{j}]"),
                        format!("{t:?} is not host:port"),
                    );
                }
            }
            for k in s.labels.keys() {
                if !valid_label_name(k) {
                    diag.error(
                        format!("{p}.static_configs[{i}].labels.{k}"),
                        "not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                    );
                }
            }
        }
        for (i, f) in self.file_sd_configs.iter().enumerate() {
            if f.files.is_empty() {
                diag.error(format!("{p}.file_sd_configs[{i}].files"), "required");
            }
            for (j, file) in f.files.iter().enumerate() {
                if !(file.ends_with(".json") || file.ends_with(".yml") || file.ends_with(".yaml")) {
                    diag.error(
                        format!("{p}.file_sd_configs[{i}].files[{j}]"),
                        "must end in .json, .yml or .yaml",
                    );
                }
            }
            if f.refresh_interval.is_zero() {
                diag.error(
                    format!("{p}.file_sd_configs[{i}].refresh_interval"),
                    "must be greater than 0",
                );
            }
        }
        if let Some(b) = &self.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                diag.error(
                    format!("{p}.basic_auth"),
                    "set password or password_file, not both",
                );
            }
        }
        if let Some(a) = &self.authorization {
            if a.credentials.is_some() && a.credentials_file.is_some() {
                diag.error(
                    format!("{p}.authorization"),
                    "set credentials or credentials_file, not both",
                );
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                diag.error(
                    format!("{p}.authorization.type"),
                    "use basic_auth for Basic credentials",
                );
            }
        }
        if let Some(t) = &self.tls_config {
            if t.server_name.is_some() {
                diag.error(
                    format!("{p}.tls_config.server_name"),
                    "not supported by otelgw yet; scrape the name the certificate is for",
                );
            }
            if t.cert_file.is_some() != t.key_file.is_some() {
                diag.error(
                    format!("{p}.tls_config"),
                    "cert_file and key_file go together",
                );
            }
        }
        if self.basic_auth.is_some() && self.authorization.is_some() {
            diag.error(p, "set basic_auth or authorization, not both");
        }
        for (key, rules) in [
            ("relabel_configs", &self.relabel_configs),
            ("metric_relabel_configs", &self.metric_relabel_configs),
        ] {
            for (i, r) in rules.iter().enumerate() {
                for (k, m) in r.check() {
                    diag.error(format!("{p}.{key}[{i}].{k}"), m);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
