//! The `hostmetrics` receiver (metrics pipelines only, no listener), as the Collector's: every
//! `collection_interval` (after `initial_delay`) each configured scraper reads the host's
//! `/proc` and `/sys` — under `root_path` when otelgw runs in a container with the host's
//! filesystem mounted — and the metrics of one collection go to the pipelines as one request,
//! with the Collector's names, units, types and attributes. Scrapers: `cpu`, `memory`, `load`,
//! `disk`, `filesystem`, `network`, `paging`, `processes`, `process`, `system` (a key present,
//! even empty, turns it on); each takes `metrics: {<name>: {enabled: bool}}` and its own keys.
//!
//! A scraper that fails is logged when its error changes and counted
//! (`otelcol_scraper_errored_metric_points`); the others still report. What was collected is
//! counted as `otelcol_scraper_scraped_metric_points{scraper}` and enters through an `Intake`
//! like every receiver; when the pipelines refuse, that collection is dropped and counted
//! (nothing is buffered) and the next interval collects again.
//!
//! Files: [`scrapers`] (one file per scraper and the shared contract), [`run`] the collection
//! task; this file the config.

pub mod run;
pub mod scrapers;

use serde::{Deserialize, Serialize};

use crate::component::units::Duration;
use crate::component::Diagnostics;
use crate::receivers::present_means_default;
use scrapers::{cpu, disk, filesystem, load, memory, network, paging, process, processes, system};

pub use run::spawn;

/// `receivers.hostmetrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostMetricsConfig {
    /// How often every scraper runs. Default 1m (the Collector's).
    pub collection_interval: Duration,
    /// Wait before the first collection. Default 1s.
    pub initial_delay: Duration,
    /// Where the host's filesystem is mounted (`/hostfs` in a container); empty: `/`.
    pub root_path: String,
    pub scrapers: Scrapers,
}

impl Default for HostMetricsConfig {
    fn default() -> Self {
        HostMetricsConfig {
            collection_interval: Duration::from_secs(60),
            initial_delay: Duration::from_secs(1),
            root_path: String::new(),
            scrapers: Scrapers::default(),
        }
    }
}

/// `scrapers`: a scraper runs when its key is present.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scrapers {
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu: Option<cpu::Config>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<memory::Config>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub load: Option<load::Config>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub disk: Option<disk::Config>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub filesystem: Option<filesystem::Config>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub network: Option<network::Config>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub paging: Option<paging::Config>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub processes: Option<processes::Config>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub process: Option<process::Config>,
    #[serde(
        deserialize_with = "present_means_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub system: Option<system::Config>,
}

impl HostMetricsConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.collection_interval.is_zero() {
            diag.error(
                format!("{path}.collection_interval"),
                "must be greater than 0",
            );
        }
        if !self.root_path.is_empty() && !self.root_path.starts_with('/') {
            diag.error(format!("{path}.root_path"), "must be an absolute path");
        }
        let s = &self.scrapers;
        let mut any = false;
        let mut check = |name: &str, problems: Option<Vec<(String, String)>>| {
            if let Some(problems) = problems {
                any = true;
                for (sub, m) in problems {
                    let p = if sub.is_empty() {
                        format!("{path}.scrapers.{name}")
                    } else {
                        format!("{path}.scrapers.{name}.{sub}")
                    };
                    diag.error(p, m);
                }
            }
        };
        check("cpu", s.cpu.as_ref().map(|c| c.validate()));
        check("memory", s.memory.as_ref().map(|c| c.validate()));
        check("load", s.load.as_ref().map(|c| c.validate()));
        check("disk", s.disk.as_ref().map(|c| c.validate()));
        check("filesystem", s.filesystem.as_ref().map(|c| c.validate()));
        check("network", s.network.as_ref().map(|c| c.validate()));
        check("paging", s.paging.as_ref().map(|c| c.validate()));
        check("processes", s.processes.as_ref().map(|c| c.validate()));
        check("process", s.process.as_ref().map(|c| c.validate()));
        check("system", s.system.as_ref().map(|c| c.validate()));
        if !any {
            diag.error(
                format!("{path}.scrapers"),
                "at least one scraper is required (cpu, memory, load, disk, filesystem, network, paging, processes, process, system)",
            );
        }
    }

    /// The root every scraper reads under.
    pub fn root(&self) -> std::path::PathBuf {
        if self.root_path.is_empty() {
            "/".into()
        } else {
            self.root_path.clone().into()
        }
    }
}

#[cfg(test)]
mod tests;
