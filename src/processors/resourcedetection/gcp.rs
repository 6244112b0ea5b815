//! The `gcp` detector: the metadata server (`http://metadata.google.internal/computeMetadata/v1/`,
//! every request with `Metadata-Flavor: Google`, every answer flagged the same) and the
//! platform's environment variables, as Google's resource detector reads them: GKE
//! (`KUBERNETES_SERVICE_HOST`), Cloud Run services (`K_CONFIGURATION`) and jobs
//! (`CLOUD_RUN_JOB`), Cloud Functions (`FUNCTION_TARGET`), App Engine (`GAE_SERVICE`,
//! `GAE_ENV=standard`), else Compute Engine when the server knows a machine type.
//! `GCE_METADATA_HOST` (`host[:port]`) moves the server, as in Google's client libraries.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::common::{read_text, send, text, Attrs, Cx, Miss};
use super::{on, AttrDefault, Flags};

/// `gcp`'s attributes and their defaults (the Collector's `metadata.yaml`).
pub const GCP_ATTRS: &[AttrDefault] = &[
    on("cloud.provider", true),
    on("cloud.platform", true),
    on("cloud.account.id", true),
    on("cloud.region", true),
    on("cloud.availability_zone", true),
    on("host.id", true),
    on("host.name", true),
    on("host.type", true),
    on("k8s.cluster.name", true),
    on("faas.name", true),
    on("faas.version", true),
    on("faas.instance", true),
    on("gcp.cloud_run.job.execution", true),
    on("gcp.cloud_run.job.task_index", true),
    on("gcp.gce.instance.name", false),
    on("gcp.gce.instance.hostname", false),
    on("gcp.gce.instance_group_manager.name", true),
    on("gcp.gce.instance_group_manager.region", true),
    on("gcp.gce.instance_group_manager.zone", true),
];

const METADATA_HOST: &str = "metadata.google.internal";
const WHAT: &str = "the GCP metadata server";

/// The metadata server of this context.
struct Server<'a> {
    cx: &'a Cx,
    base: String,
}

impl Server<'_> {
    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        self.cx
            .client
            .get(format!("{}/{path}", self.base))
            .header("Metadata-Flavor", "Google")
    }

    async fn get(&self, path: &str) -> Result<String, Miss> {
        text(self.request(path), WHAT)
            .await
            .map(|s| s.trim().to_string())
    }

    /// The last segment of a `projects/…/zones/<zone>` style value.
    async fn last_segment(&self, path: &str) -> Result<String, Miss> {
        let v = self.get(path).await?;
        Ok(v.rsplit('/').next().unwrap_or_default().to_string())
    }
}

/// Fills what `a` has switched on from `value`; a failure is remembered, not fatal (the rest of
/// the platform's attributes still count).
fn put(a: &mut Attrs<'_>, missing: &mut Vec<String>, key: &str, value: Result<String, Miss>) {
    match value {
        Ok(v) => a.str(key, v),
        Err(Miss::Absent(why) | Miss::Failed(why)) => missing.push(format!("{key}: {why}")),
    }
}

fn env(cx: &Cx, var: &str) -> Result<String, Miss> {
    cx.var(var)
        .ok_or_else(|| Miss::Failed(format!("{var} is unset")))
}

/// `(zone, region)` of a `country-region-zone` zone.
fn zone_and_region(zone: &str) -> Result<(String, String), Miss> {
    let parts: Vec<&str> = zone.splitn(3, '-').collect();
    match parts.as_slice() {
        [country, region, _] => Ok((zone.to_string(), format!("{country}-{region}"))),
        _ => Err(Miss::Failed(format!(
            "zone {zone:?} is not country-region-zone"
        ))),
    }
}

pub(crate) async fn gcp(flags: &Flags, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
    let host = cx
        .var("GCE_METADATA_HOST")
        .unwrap_or_else(|| METADATA_HOST.to_string());
    let md = Server {
        cx,
        base: format!("http://{host}/computeMetadata/v1"),
    };
    // on GCP when the server answers as Google's (the client libraries' `OnGCE`)
    let resp = send(md.request("project/project-id"), WHAT).await?;
    let flavor = resp
        .headers()
        .get("metadata-flavor")
        .and_then(|v| v.to_str().ok());
    if flavor != Some("Google") {
        return Err(Miss::Absent(format!(
            "{host} answered without Metadata-Flavor: Google (not a GCP metadata server)"
        )));
    }
    let project = read_text(resp, WHAT).await?.trim().to_string();

    let mut a = Attrs::new(flags, GCP_ATTRS);
    let mut missing: Vec<String> = Vec::new();
    a.str("cloud.provider", "gcp");
    a.str("cloud.account.id", project);
    let instance_id = || md.get("instance/id");
    let region = || md.last_segment("instance/region");
    if cx.var("KUBERNETES_SERVICE_HOST").is_some() {
        a.str("cloud.platform", "gcp_kubernetes_engine");
        // a zonal cluster's location is a zone, a regional one's a region
        match md.get("instance/attributes/cluster-location").await {
            Ok(loc) => match loc.matches('-').count() {
                1 => a.str("cloud.region", loc),
                2 => a.str("cloud.availability_zone", loc),
                _ => missing.push(format!(
                    "cluster location {loc:?} is neither zone nor region"
                )),
            },
            Err(Miss::Absent(why) | Miss::Failed(why)) => {
                missing.push(format!("cluster location: {why}"))
            }
        }
        if a.on("k8s.cluster.name") {
            let v = md.get("instance/attributes/cluster-name").await;
            put(&mut a, &mut missing, "k8s.cluster.name", v);
        }
        if a.on("host.id") {
            put(&mut a, &mut missing, "host.id", instance_id().await);
        }
        // not there under workload identity: not worth a warning
        if a.on("host.name") {
            if let Ok(v) = md.get("instance/name").await {
                a.str("host.name", v);
            }
        }
    } else if cx.var("K_CONFIGURATION").is_some() || cx.var("FUNCTION_TARGET").is_some() {
        let functions = cx.var("K_CONFIGURATION").is_none();
        a.str(
            "cloud.platform",
            if functions {
                "gcp_cloud_functions"
            } else {
                "gcp_cloud_run"
            },
        );
        put(&mut a, &mut missing, "faas.name", env(cx, "K_SERVICE"));
        put(&mut a, &mut missing, "faas.version", env(cx, "K_REVISION"));
        put(&mut a, &mut missing, "faas.instance", instance_id().await);
        put(&mut a, &mut missing, "cloud.region", region().await);
    } else if cx.var("CLOUD_RUN_JOB").is_some() {
        a.str("cloud.platform", "gcp_cloud_run");
        put(&mut a, &mut missing, "faas.name", env(cx, "CLOUD_RUN_JOB"));
        put(&mut a, &mut missing, "cloud.region", region().await);
        put(&mut a, &mut missing, "faas.instance", instance_id().await);
        let execution = env(cx, "CLOUD_RUN_EXECUTION");
        put(
            &mut a,
            &mut missing,
            "gcp.cloud_run.job.execution",
            execution,
        );
        let index = env(cx, "CLOUD_RUN_TASK_INDEX");
        put(&mut a, &mut missing, "gcp.cloud_run.job.task_index", index);
    } else if cx.var("GAE_SERVICE").is_some() {
        a.str("cloud.platform", "gcp_app_engine");
        put(&mut a, &mut missing, "faas.name", env(cx, "GAE_SERVICE"));
        put(&mut a, &mut missing, "faas.version", env(cx, "GAE_VERSION"));
        put(
            &mut a,
            &mut missing,
            "faas.instance",
            env(cx, "GAE_INSTANCE"),
        );
        let zone = md.last_segment("instance/zone").await;
        if cx.var("GAE_ENV").as_deref() == Some("standard") {
            put(&mut a, &mut missing, "cloud.availability_zone", zone);
            put(&mut a, &mut missing, "cloud.region", region().await);
        } else {
            match zone.and_then(|z| zone_and_region(&z)) {
                Ok((z, r)) => {
                    a.str("cloud.availability_zone", z);
                    a.str("cloud.region", r);
                }
                Err(Miss::Absent(why) | Miss::Failed(why)) => missing.push(format!("zone: {why}")),
            }
        }
    } else if let Ok(machine_type) = md.get("instance/machine-type").await {
        a.str("cloud.platform", "gcp_compute_engine");
        a.str("host.type", machine_type);
        match md
            .last_segment("instance/zone")
            .await
            .and_then(|z| zone_and_region(&z))
        {
            Ok((z, r)) => {
                a.str("cloud.availability_zone", z);
                a.str("cloud.region", r);
            }
            Err(Miss::Absent(why) | Miss::Failed(why)) => missing.push(format!("zone: {why}")),
        }
        put(&mut a, &mut missing, "host.id", instance_id().await);
        if a.on("host.name") || a.on("gcp.gce.instance.name") {
            let name = md.get("instance/name").await;
            if let Ok(n) = &name {
                a.str("gcp.gce.instance.name", n.as_str());
            }
            put(&mut a, &mut missing, "host.name", name);
        }
        if a.on("gcp.gce.instance.hostname") {
            let v = md.get("instance/hostname").await;
            put(&mut a, &mut missing, "gcp.gce.instance.hostname", v);
        }
        managed_instance_group(&md, &mut a).await;
    }
    if !missing.is_empty() {
        tracing::warn!(
            "gcp detector: some attributes are not set: {}",
            missing.join("; ")
        );
    }
    Ok(a.finish())
}

/// The managed instance group that created this VM, from `instance/attributes/created-by`
/// (`projects/<p>/zones|regions/<location>/instanceGroupManagers/<name>`); nothing when the key
/// is not defined or names something else.
async fn managed_instance_group(md: &Server<'_>, a: &mut Attrs<'_>) {
    let Ok(created_by) = md.get("instance/attributes/created-by").await else {
        return;
    };
    if let ["projects", _, kind @ ("zones" | "regions"), location, "instanceGroupManagers", name] =
        created_by.split('/').collect::<Vec<_>>().as_slice()
    {
        a.str("gcp.gce.instance_group_manager.name", *name);
        let key = if *kind == "zones" {
            "gcp.gce.instance_group_manager.zone"
        } else {
            "gcp.gce.instance_group_manager.region"
        };
        a.str(key, *location);
    }
}
