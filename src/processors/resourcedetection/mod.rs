//! `resourcedetection` (alias `resource_detection`): detects what the gateway runs on — its
//! environment, the host, Docker, AWS EC2 / ECS / EKS, GCP, Azure / AKS — and merges those
//! attributes into every resource of all three signals. Keys, defaults and attribute names are
//! the Collector contrib processor's.
//!
//! **Once, not per request.** Detection runs when the graph starts (and again at a config
//! reload, which starts a new graph): [`ResourceDetectionConfig::detect`] is called once per
//! processor id by [`super::ProcessorConfig::prepare`], every detector concurrently, each
//! bounded by `timeout`. The running processor only merges that fixed attribute list into each
//! resource. It reads nothing but resources (`Reads::Resources`), so a pipeline with it
//! still forwards the client's protobuf with only the resources re-encoded.
//!
//! **Merge rules.** Detectors are merged in the order listed: for a key several detectors find,
//! the first one wins. The result goes into each resource: with `override: true` (the default)
//! detected values replace the resource's own, with `false` the resource's own values stay.
//!
//! **A detector that finds nothing adds nothing.** A platform that is not there (no metadata
//! endpoint, no Docker socket, not on Kubernetes) is logged as one warning; a platform that
//! answers wrongly is logged as an error. Either way the gateway starts (the Collector can be
//! told to refuse to start instead; otelgw has no such switch). Outcomes are counted in
//! `otelcol_resourcedetection_detector_results{processor,detector,outcome}` (`success`,
//! `absent`, `failure`); `otelcol_resourcedetection_attributes_detected{processor}` is the size
//! of the detected set.
//!
//! **Where each detector looks** (the endpoints can be moved by environment variables — the
//! cloud SDKs' own where they have one — which is how the tests point detectors at fake
//! metadata servers on loopback; in production they are normally unset):
//! - `env`: `OTEL_RESOURCE_ATTRIBUTES` (else the deprecated `OTEL_RESOURCE`), values
//!   percent-decoded as the specification says; a malformed value is discarded whole.
//! - `system`: the kernel's hostname, `/etc/hosts` for `dns`, `/etc/machine-id`, `/etc/os-release`
//!   and `/proc/sys/kernel` — files only, no DNS queries ([`local`]).
//! - `docker`: the Engine API `GET /info` over `/var/run/docker.sock` (`DOCKER_HOST=unix://…`
//!   moves it).
//! - `ec2` and `eks`: IMDSv2 at `http://169.254.169.254` (`AWS_EC2_METADATA_SERVICE_ENDPOINT`
//!   moves it, `AWS_EC2_METADATA_DISABLED=true` turns it off) ([`aws`]).
//! - `ecs`: the task metadata endpoint in `ECS_CONTAINER_METADATA_URI_V4` (or `_URI`, v3).
//! - `gcp`: `http://metadata.google.internal` with `Metadata-Flavor: Google` (`GCE_METADATA_HOST`
//!   moves it, as in Google's client libraries) ([`gcp`]).
//! - `azure` and `aks`: IMDS at `http://169.254.169.254` with `Metadata: true`
//!   (`OTELGW_AZURE_IMDS_ENDPOINT`, test-only, moves it) ([`azure`]).
//!
//! Differences from the Collector: detection is not retried with backoff, a detector that
//! fails contributes nothing instead of stopping the start, and the detected schema URL is not
//! written (a resource edit does not reach it). Keys the Collector has that otelgw accepts
//! without effect (`refresh_interval`, `fail_on_missing_metadata`, `ec2.tags`, `azure.tags`,
//! `gcp.labels`, `eks.node_from_env_var`) and attributes it cannot detect are warned about at
//! validation.

pub mod aws;
pub mod azure;
mod common;
pub mod gcp;
pub mod local;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::{Deserialize, Serialize};

use super::{Processor, Rejections};
use crate::component::units::{format_duration, Duration};
use crate::component::Diagnostics;
use crate::data::{RequestMeta, Telemetry};
use crate::telemetry::metrics::{names, Registry};
pub(crate) use common::{Cx, Miss};

/// The detectors otelgw has, by config name.
pub const DETECTORS: &[&str] = &[
    "env", "system", "docker", "ec2", "ecs", "eks", "gcp", "azure", "aks",
];

/// Detectors the Collector has and otelgw does not (named apart in the error).
const COLLECTOR_ONLY: &[&str] = &[
    "akamai",
    "alibaba_ecs",
    "azurecontainerapps",
    "consul",
    "digitalocean",
    "dynatrace",
    "elastic_beanstalk",
    "heroku",
    "hetzner",
    "ibmcloud_classic",
    "ibmcloud_vpc",
    "k8s_api",
    "k8snode",
    "kubeadm",
    "lambda",
    "nova",
    "openshift",
    "oraclecloud",
    "scaleway",
    "tencent_cvm",
    "upcloud",
    "vultr",
];

/// `processors.resourcedetection`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceDetectionConfig {
    /// Detectors to run, merged in this order (the first to find a key wins).
    pub detectors: Vec<String>,
    /// Detected values replace a resource's own (true, the default) or only fill in keys the
    /// resource does not have.
    #[serde(rename = "override")]
    pub override_existing: bool,
    /// How long each detector may take, all of its requests included (5s, as the Collector).
    pub timeout: Duration,
    /// `env`: which keys of `OTEL_RESOURCE_ATTRIBUTES` to keep.
    pub env: EnvConfig,
    /// `system`: `hostname_sources` and attribute flags.
    pub system: SystemConfig,
    /// `docker`: attribute flags.
    pub docker: AttributeFlags,
    /// `ec2`: attribute flags.
    pub ec2: TaggedConfig,
    /// `ecs`: attribute flags.
    pub ecs: AttributeFlags,
    /// `eks`: attribute flags.
    pub eks: EksConfig,
    /// `gcp`: attribute flags.
    pub gcp: GcpConfig,
    /// `azure`: attribute flags.
    pub azure: TaggedConfig,
    /// `aks`: attribute flags.
    pub aks: AttributeFlags,
    /// Accepted; no effect (detection runs once per start or reload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<Duration>,
    /// Accepted; no effect (a detector that finds nothing never stops the start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_on_missing_metadata: Option<bool>,
}

impl Default for ResourceDetectionConfig {
    fn default() -> Self {
        ResourceDetectionConfig {
            detectors: vec!["env".into()],
            override_existing: true,
            timeout: Duration::from_secs(5),
            env: EnvConfig::default(),
            system: SystemConfig::default(),
            docker: AttributeFlags::default(),
            ec2: TaggedConfig::default(),
            ecs: AttributeFlags::default(),
            eks: EksConfig::default(),
            gcp: GcpConfig::default(),
            azure: TaggedConfig::default(),
            aks: AttributeFlags::default(),
            refresh_interval: None,
            fail_on_missing_metadata: None,
        }
    }
}

/// One attribute's switch: `resource_attributes.<name>.enabled`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    /// Whether the detector emits the attribute.
    pub enabled: bool,
}

/// `resource_attributes`: attribute name → switch, over the detector's defaults (the
/// Collector's `metadata.yaml`).
pub type Flags = BTreeMap<String, Toggle>;

/// A detector whose only settings are its attribute switches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeFlags {
    /// Attribute name → `{enabled: bool}` over the detector's defaults.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: Flags,
}

/// Whether attribute `name` is on: its switch if set, else the detector's default.
pub fn enabled(flags: &Flags, defaults: &[AttrDefault], name: &str) -> bool {
    match flags.get(name) {
        Some(t) => t.enabled,
        None => defaults.iter().any(|a| a.name == name && a.enabled),
    }
}

fn validate_flags(flags: &Flags, path: &str, defaults: &[AttrDefault], diag: &mut Diagnostics) {
    for (name, t) in flags {
        let p = format!("{path}.resource_attributes.{name}");
        match defaults.iter().find(|a| a.name == name) {
            None => diag.error(
                p,
                format!(
                    "unknown attribute (this detector has: {})",
                    defaults
                        .iter()
                        .map(|a| a.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(a) if t.enabled && !a.detected => diag.warn(
                p,
                "accepted for compatibility; otelgw does not detect this attribute",
            ),
            Some(_) => {}
        }
    }
}

/// One attribute a detector knows: its name, whether it is on by default (the Collector's
/// `metadata.yaml`) and whether otelgw detects it.
#[derive(Debug, Clone, Copy)]
pub struct AttrDefault {
    pub name: &'static str,
    pub enabled: bool,
    pub detected: bool,
}

/// `(name, on by default)` for attributes otelgw detects.
pub(crate) const fn on(name: &'static str, enabled: bool) -> AttrDefault {
    AttrDefault {
        name,
        enabled,
        detected: true,
    }
}

/// An attribute the Collector's detector has and otelgw does not detect (off by default).
pub(crate) const fn undetected(name: &'static str) -> AttrDefault {
    AttrDefault {
        name,
        enabled: false,
        detected: false,
    }
}

/// `env`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvConfig {
    /// Which keys to keep (`*` matches any run of characters).
    pub attributes: EnvAttributes,
}

/// `env.attributes`: `included` (empty: every key), then `excluded`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvAttributes {
    /// Keys kept; empty keeps every key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub included: Vec<String>,
    /// Keys dropped (after `included`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
}

/// `system`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    /// Where `host.name` comes from, first success wins: `dns`, `os`, `cname`, `lookup`
    /// (default `[dns, os]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hostname_sources: Vec<String>,
    /// Attribute name → `{enabled: bool}` over the detector's defaults.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: Flags,
}

/// `ec2` and `azure`: attribute switches, and `tags` (accepted, no effect).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaggedConfig {
    /// Accepted; no effect (instance tags need the cloud's API, not the metadata endpoint).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Attribute name → `{enabled: bool}` over the detector's defaults.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: Flags,
}

/// `gcp`: attribute switches, and `labels` (accepted, no effect).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcpConfig {
    /// Accepted; no effect (instance labels need the Compute API).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Attribute name → `{enabled: bool}` over the detector's defaults.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: Flags,
}

/// `eks`: attribute switches, and `node_from_env_var` (accepted, no effect).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EksConfig {
    /// Accepted; no effect (otelgw does not query the Kubernetes API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_from_env_var: Option<String>,
    /// Attribute name → `{enabled: bool}` over the detector's defaults.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: Flags,
}

impl ResourceDetectionConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        for (i, d) in self.detectors.iter().enumerate() {
            if DETECTORS.contains(&d.trim()) {
                continue;
            }
            let why = if COLLECTOR_ONLY.contains(&d.trim()) {
                "a Collector detector otelgw does not have"
            } else {
                "unknown detector"
            };
            diag.error(
                format!("{path}.detectors[{i}]"),
                format!("{why} {d:?} (known: {})", DETECTORS.join(", ")),
            );
        }
        if self.detectors.is_empty() {
            diag.warn(
                format!("{path}.detectors"),
                "no detectors: the processor adds nothing",
            );
        }
        if self.timeout.is_zero() {
            diag.error(
                format!("{path}.timeout"),
                "must be more than 0 (it bounds each detector)",
            );
        }
        diag.warn_inert(
            path,
            &[
                ("refresh_interval", self.refresh_interval.is_some()),
                (
                    "fail_on_missing_metadata",
                    self.fail_on_missing_metadata.is_some(),
                ),
                ("ec2.tags", !self.ec2.tags.is_empty()),
                ("azure.tags", !self.azure.tags.is_empty()),
                ("gcp.labels", !self.gcp.labels.is_empty()),
                (
                    "eks.node_from_env_var",
                    self.eks.node_from_env_var.is_some(),
                ),
            ],
        );
        local::validate_system(&self.system, &format!("{path}.system"), diag);
        let flags: [(&str, &Flags, &[AttrDefault]); 8] = [
            (
                "system",
                &self.system.resource_attributes,
                local::SYSTEM_ATTRS,
            ),
            (
                "docker",
                &self.docker.resource_attributes,
                local::DOCKER_ATTRS,
            ),
            ("ec2", &self.ec2.resource_attributes, aws::EC2_ATTRS),
            ("ecs", &self.ecs.resource_attributes, aws::ECS_ATTRS),
            ("eks", &self.eks.resource_attributes, aws::EKS_ATTRS),
            ("gcp", &self.gcp.resource_attributes, gcp::GCP_ATTRS),
            ("azure", &self.azure.resource_attributes, azure::AZURE_ATTRS),
            ("aks", &self.aks.resource_attributes, azure::AKS_ATTRS),
        ];
        for (name, f, defaults) in flags {
            validate_flags(f, &format!("{path}.{name}"), defaults, diag);
        }
    }

    /// Runs every detector (concurrently, each within `timeout`) in this process's environment
    /// and merges what they found. Logs and counts each detector's outcome under `processor`.
    pub async fn detect(&self, processor: &str, registry: &Registry) -> Vec<KeyValue> {
        match Cx::from_process(self.timeout.get()) {
            Ok(cx) => self.detect_with(&cx, processor, registry).await,
            Err(e) => {
                tracing::error!(%processor, "resource detection cannot start: {e}");
                Vec::new()
            }
        }
    }

    /// [`ResourceDetectionConfig::detect`] against the given context (environment, files,
    /// HTTP client).
    pub(crate) async fn detect_with(
        &self,
        cx: &Cx,
        processor: &str,
        registry: &Registry,
    ) -> Vec<KeyValue> {
        let limit = self.timeout.get();
        let runs = self.detectors.iter().map(|name| async move {
            let name = name.trim();
            let found = tokio::time::timeout(limit, self.run(name, cx))
                .await
                .unwrap_or_else(|_| {
                    Err(Miss::Absent(format!(
                        "no answer within the timeout ({})",
                        format_duration(limit)
                    )))
                });
            (name, found)
        });
        let results = futures_util::future::join_all(runs).await;
        let mut merged: Vec<KeyValue> = Vec::new();
        for (detector, found) in results {
            let outcome = match found {
                Ok(attrs) => {
                    tracing::debug!(%processor, %detector, attributes = attrs.len(), "detector done");
                    for kv in attrs {
                        if !merged.iter().any(|m| m.key == kv.key) {
                            merged.push(kv);
                        }
                    }
                    "success"
                }
                Err(Miss::Absent(why)) => {
                    tracing::warn!(%processor, %detector, "{why}; the {detector} detector adds nothing");
                    "absent"
                }
                Err(Miss::Failed(why)) => {
                    tracing::error!(%processor, %detector, "{why}; the {detector} detector adds nothing");
                    "failure"
                }
            };
            registry
                .counter(
                    names::RESOURCEDETECTION_DETECTOR_RESULTS,
                    "Resource detection outcomes by detector.",
                    &[
                        ("processor", processor),
                        ("detector", detector),
                        ("outcome", outcome),
                    ],
                )
                .inc();
        }
        registry
            .gauge(
                names::RESOURCEDETECTION_ATTRIBUTES_DETECTED,
                "Number of attributes in the detected resource.",
                &[("processor", processor)],
            )
            .set(i64::try_from(merged.len()).unwrap_or(i64::MAX));
        let keys: Vec<&str> = merged.iter().map(|kv| kv.key.as_str()).collect();
        tracing::info!(%processor, attributes = ?keys, "resource detection done");
        merged
    }

    async fn run(&self, detector: &str, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
        match detector {
            "env" => local::env(&self.env, cx),
            "system" => local::system(&self.system, cx),
            "docker" => local::docker(&self.docker.resource_attributes, cx).await,
            "ec2" => aws::ec2(&self.ec2.resource_attributes, cx).await,
            "ecs" => aws::ecs(&self.ecs.resource_attributes, cx).await,
            "eks" => aws::eks(&self.eks.resource_attributes, cx).await,
            "gcp" => gcp::gcp(&self.gcp.resource_attributes, cx).await,
            "azure" => azure::azure(&self.azure.resource_attributes, cx).await,
            "aks" => azure::aks(&self.aks.resource_attributes, cx).await,
            other => Err(Miss::Failed(format!("unknown detector {other:?}"))),
        }
    }

    /// The running processor over the attributes [`ResourceDetectionConfig::detect`] found.
    pub fn build(&self, detected: Arc<Vec<KeyValue>>) -> ResourceDetectionProcessor {
        ResourceDetectionProcessor {
            detected,
            override_existing: self.override_existing,
        }
    }
}

/// Merges the detected attributes into each resource; does no I/O.
pub struct ResourceDetectionProcessor {
    detected: Arc<Vec<KeyValue>>,
    override_existing: bool,
}

impl ResourceDetectionProcessor {
    /// The attributes this processor merges.
    pub fn detected(&self) -> &[KeyValue] {
        &self.detected
    }
}

impl Processor for ResourceDetectionProcessor {
    fn process(&self, data: &mut Telemetry, meta: &RequestMeta, _rejected: &mut Rejections) {
        for res in data.resources_mut() {
            self.edit_resource(res, meta);
        }
    }

    fn reads(&self) -> super::Reads {
        super::Reads::Resources
    }

    fn edit_resource(&self, res: &mut Option<Resource>, _meta: &RequestMeta) {
        if self.detected.is_empty() {
            return;
        }
        let attrs = &mut res.get_or_insert_with(Default::default).attributes;
        for kv in self.detected.iter() {
            match attrs.iter_mut().find(|a| a.key == kv.key) {
                Some(own) if self.override_existing => own.value = kv.value.clone(),
                Some(_) => {}
                None => attrs.push(kv.clone()),
            }
        }
    }
}
