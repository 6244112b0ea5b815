//! The Azure detectors: `azure` (the Instance Metadata Service's compute document,
//! `GET /metadata/instance/compute?api-version=2020-09-01&format=json` with `Metadata: true`)
//! and `aks` (the same document, on Kubernetes). IMDS is at `http://169.254.169.254`;
//! `OTELGW_AZURE_IMDS_ENDPOINT` moves it — a test-only switch (Azure's SDKs have none).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde::Deserialize;

use super::common::{json, Attrs, Cx, Miss};
use super::{on, AttrDefault, Flags};

/// `azure`'s attributes and their defaults (the Collector's `metadata.yaml`).
pub const AZURE_ATTRS: &[AttrDefault] = &[
    on("cloud.provider", true),
    on("cloud.platform", true),
    on("cloud.region", true),
    on("cloud.account.id", true),
    on("host.name", true),
    on("host.id", true),
    on("azure.vm.name", true),
    on("azure.vm.size", true),
    on("azure.vm.scaleset.name", true),
    on("azure.resourcegroup.name", true),
];

/// `aks`'s attributes and their defaults.
pub const AKS_ATTRS: &[AttrDefault] = &[
    on("cloud.provider", true),
    on("cloud.platform", true),
    on("k8s.cluster.name", false),
];

const IMDS: &str = "http://169.254.169.254";
/// The API version the Collector asks for.
pub const API_VERSION: &str = "2020-09-01";

/// The compute document's fields the detectors read.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Compute {
    location: String,
    name: String,
    #[serde(rename = "vmId")]
    vm_id: String,
    vm_size: String,
    subscription_id: String,
    resource_group_name: String,
    vm_scale_set_name: String,
}

async fn compute(cx: &Cx) -> Result<Compute, Miss> {
    let base = cx
        .var("OTELGW_AZURE_IMDS_ENDPOINT")
        .unwrap_or_else(|| IMDS.to_string());
    let req = cx
        .client
        .get(format!(
            "{}/metadata/instance/compute",
            base.trim_end_matches('/')
        ))
        .query(&[("api-version", API_VERSION), ("format", "json")])
        .header("Metadata", "true");
    json(req, "the Azure instance metadata service").await
}

/// `azure`: `cloud.*`, `host.*` and `azure.*` of the VM.
pub(crate) async fn azure(flags: &Flags, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
    let c = compute(cx).await?;
    let mut a = Attrs::new(flags, AZURE_ATTRS);
    a.str("cloud.provider", "azure");
    a.str("cloud.platform", "azure_vm");
    a.str("host.name", c.name.as_str());
    a.str("cloud.region", c.location);
    a.str("host.id", c.vm_id);
    a.str("cloud.account.id", c.subscription_id);
    // the name again: host.name is the system detector's too
    a.str("azure.vm.name", c.name);
    a.str("azure.vm.size", c.vm_size);
    a.str("azure.vm.scaleset.name", c.vm_scale_set_name);
    a.str("azure.resourcegroup.name", c.resource_group_name);
    Ok(a.finish())
}

/// `aks`: on Kubernetes (`KUBERNETES_SERVICE_HOST` set) where IMDS answers, `cloud.provider`
/// `azure`, `cloud.platform` `azure_aks`, and (when switched on) the cluster name parsed from
/// the infrastructure resource group.
pub(crate) async fn aks(flags: &Flags, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
    if cx.var("KUBERNETES_SERVICE_HOST").is_none() {
        return Err(Miss::Absent(
            "not on Kubernetes (KUBERNETES_SERVICE_HOST is unset)".into(),
        ));
    }
    let c = compute(cx).await?;
    let mut a = Attrs::new(flags, AKS_ATTRS);
    a.str("cloud.provider", "azure");
    a.str("cloud.platform", "azure_aks");
    a.str("k8s.cluster.name", cluster_name(&c.resource_group_name));
    Ok(a.finish())
}

/// The cluster name in a generated infrastructure resource group
/// (`MC_<resource group>_<cluster>_<location>`); the group's own name when it is custom or
/// ambiguous (underscores in the names) — still unique per cluster.
pub fn cluster_name(resource_group: &str) -> &str {
    match resource_group.split('_').collect::<Vec<_>>().as_slice() {
        [mc, _, cluster, _] if mc.eq_ignore_ascii_case("mc") => cluster,
        _ => resource_group,
    }
}
