//! The AWS detectors: `ec2` (the instance metadata service, IMDSv2: a session token from
//! `PUT /latest/api/token`, then the instance identity document and the hostname), `ecs` (the
//! task metadata endpoint, v4 or v3) and `eks` (Kubernetes on EC2, seen through IMDS only).
//!
//! IMDS is at `http://169.254.169.254`; `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it and
//! `AWS_EC2_METADATA_DISABLED=true` turns it off, as for the AWS SDKs.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde::Deserialize;

use super::common::{json, read_text, send, text, Attrs, Cx, Miss};
use super::{on, undetected, AttrDefault, Flags};

/// `ec2`'s attributes and their defaults (the Collector's `metadata.yaml`).
pub const EC2_ATTRS: &[AttrDefault] = &[
    on("cloud.provider", true),
    on("cloud.platform", true),
    on("cloud.region", true),
    on("cloud.account.id", true),
    on("cloud.availability_zone", true),
    on("host.id", true),
    on("host.image.id", true),
    on("host.name", true),
    on("host.type", true),
];

/// `ecs`'s attributes and their defaults.
pub const ECS_ATTRS: &[AttrDefault] = &[
    on("cloud.provider", true),
    on("cloud.platform", true),
    on("cloud.account.id", true),
    on("cloud.region", true),
    on("cloud.availability_zone", true),
    on("aws.ecs.cluster.arn", true),
    on("aws.ecs.task.arn", true),
    on("aws.ecs.task.family", true),
    on("aws.ecs.task.id", true),
    on("aws.ecs.task.revision", true),
    on("aws.ecs.launchtype", true),
    on("aws.log.group.names", true),
    on("aws.log.group.arns", true),
    on("aws.log.stream.names", true),
    on("aws.log.stream.arns", true),
];

/// `eks`'s attributes and their defaults.
pub const EKS_ATTRS: &[AttrDefault] = &[
    on("cloud.provider", true),
    on("cloud.platform", true),
    on("cloud.account.id", false),
    on("cloud.region", false),
    on("cloud.availability_zone", false),
    on("host.id", false),
    on("host.image.id", false),
    on("host.name", false),
    on("host.type", false),
    // needs the EC2 API (DescribeInstances)
    undetected("k8s.cluster.name"),
];

const IMDS: &str = "http://169.254.169.254";
const IMDS_WHAT: &str = "EC2 instance metadata";
/// Seconds an IMDSv2 session token lives (the AWS SDKs' value).
const TOKEN_TTL: &str = "21600";

/// An IMDS session: the base URL and the IMDSv2 token (none when the endpoint only does
/// IMDSv1).
struct Imds {
    base: String,
    token: Option<String>,
}

impl Imds {
    async fn open(cx: &Cx) -> Result<Imds, Miss> {
        if cx
            .var("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(Miss::Absent(
                "EC2 instance metadata is turned off (AWS_EC2_METADATA_DISABLED=true)".into(),
            ));
        }
        let base = cx
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| IMDS.to_string())
            .trim_end_matches('/')
            .to_string();
        let put = cx
            .client
            .put(format!("{base}/latest/api/token"))
            .header("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL);
        let token = match send(put, IMDS_WHAT).await {
            Ok(resp) => Some(read_text(resp, IMDS_WHAT).await?),
            Err(Miss::Absent(why)) => return Err(Miss::Absent(why)),
            // an endpoint without IMDSv2: plain GETs (IMDSv1), as the AWS SDKs fall back
            Err(Miss::Failed(why)) => {
                tracing::debug!("no IMDSv2 token ({why}); trying IMDSv1");
                None
            }
        };
        Ok(Imds { base, token })
    }

    fn get(&self, cx: &Cx, path: &str) -> reqwest::RequestBuilder {
        let req = cx.client.get(format!("{}/{path}", self.base));
        match &self.token {
            Some(t) => req.header("X-aws-ec2-metadata-token", t),
            None => req,
        }
    }

    async fn text(&self, cx: &Cx, path: &str) -> Result<String, Miss> {
        text(self.get(cx, path), IMDS_WHAT).await
    }

    async fn identity(&self, cx: &Cx) -> Result<IdentityDocument, Miss> {
        json(
            self.get(cx, "latest/dynamic/instance-identity/document"),
            IMDS_WHAT,
        )
        .await
    }
}

/// The instance identity document's fields the detectors read.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct IdentityDocument {
    account_id: String,
    availability_zone: String,
    image_id: String,
    instance_id: String,
    instance_type: String,
    region: String,
}

fn put_identity(a: &mut Attrs<'_>, doc: IdentityDocument) {
    a.str("cloud.region", doc.region);
    a.str("cloud.account.id", doc.account_id);
    a.str("cloud.availability_zone", doc.availability_zone);
    a.str("host.id", doc.instance_id);
    a.str("host.image.id", doc.image_id);
    a.str("host.type", doc.instance_type);
}

/// `ec2`: `cloud.*` and `host.*` from the instance identity document and the hostname.
pub(crate) async fn ec2(flags: &Flags, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
    let imds = Imds::open(cx).await?;
    // the Collector's probe: an instance id means EC2
    imds.text(cx, "latest/meta-data/instance-id").await?;
    let doc = imds.identity(cx).await?;
    let hostname = imds.text(cx, "latest/meta-data/hostname").await?;
    let mut a = Attrs::new(flags, EC2_ATTRS);
    a.str("cloud.provider", "aws");
    a.str("cloud.platform", "aws_ec2");
    put_identity(&mut a, doc);
    a.str("host.name", hostname);
    Ok(a.finish())
}

/// `eks`: on Kubernetes (`KUBERNETES_SERVICE_HOST` set) where EC2 instance metadata answers,
/// `cloud.provider` `aws` and `cloud.platform` `aws_eks`, and the instance's attributes that are
/// switched on. The Collector also asks the Kubernetes API whether the cluster is EKS and the
/// EC2 API for the cluster name; otelgw queries neither, so any Kubernetes on EC2 counts.
pub(crate) async fn eks(flags: &Flags, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
    if cx.var("KUBERNETES_SERVICE_HOST").is_none() {
        return Err(Miss::Absent(
            "not on Kubernetes (KUBERNETES_SERVICE_HOST is unset)".into(),
        ));
    }
    let imds = Imds::open(cx).await?;
    imds.text(cx, "latest/meta-data/instance-id").await?;
    let mut a = Attrs::new(flags, EKS_ATTRS);
    a.str("cloud.provider", "aws");
    a.str("cloud.platform", "aws_eks");
    let from_document = [
        "cloud.region",
        "cloud.account.id",
        "cloud.availability_zone",
        "host.id",
        "host.image.id",
        "host.type",
    ];
    if from_document.iter().any(|k| a.on(k)) {
        put_identity(&mut a, imds.identity(cx).await?);
    }
    if a.on("host.name") {
        let hostname = imds.text(cx, "latest/meta-data/hostname").await?;
        a.str("host.name", hostname);
    }
    Ok(a.finish())
}

/// The task metadata endpoint's `/task` answer (the fields the detector reads).
#[derive(Deserialize, Default)]
#[serde(default)]
struct TaskMetadata {
    #[serde(rename = "Cluster")]
    cluster: String,
    #[serde(rename = "TaskARN")]
    task_arn: String,
    #[serde(rename = "Family")]
    family: String,
    #[serde(rename = "Revision")]
    revision: String,
    #[serde(rename = "AvailabilityZone")]
    availability_zone: String,
    #[serde(rename = "LaunchType")]
    launch_type: String,
    #[serde(rename = "Containers")]
    containers: Vec<ContainerMetadata>,
}

/// One container in the task metadata (and the container endpoint's own answer).
#[derive(Deserialize, Default)]
#[serde(default)]
struct ContainerMetadata {
    #[serde(rename = "DockerId")]
    docker_id: String,
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "KnownStatus")]
    known_status: String,
    #[serde(rename = "LogDriver")]
    log_driver: String,
    #[serde(rename = "LogOptions")]
    log_options: LogOptions,
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
struct LogOptions {
    #[serde(rename = "awslogs-group")]
    group: String,
    #[serde(rename = "awslogs-region")]
    region: String,
    #[serde(rename = "awslogs-stream")]
    stream: String,
}

/// `ecs`: the task (`GET ${ECS_CONTAINER_METADATA_URI_V4}/task`) and this container
/// (`GET ${ECS_CONTAINER_METADATA_URI_V4}`); v3 (`ECS_CONTAINER_METADATA_URI`) when v4 is unset.
pub(crate) async fn ecs(flags: &Flags, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
    let base = cx
        .var("ECS_CONTAINER_METADATA_URI_V4")
        .or_else(|| cx.var("ECS_CONTAINER_METADATA_URI"))
        .ok_or_else(|| {
            Miss::Absent(
                "not on ECS (ECS_CONTAINER_METADATA_URI_V4 and ECS_CONTAINER_METADATA_URI are \
                 unset)"
                    .into(),
            )
        })?;
    let base = base.trim_end_matches('/');
    const WHAT: &str = "the ECS task metadata endpoint";
    let task: TaskMetadata = json(cx.client.get(format!("{base}/task")), WHAT).await?;
    let own: ContainerMetadata = json(cx.client.get(base), WHAT).await?;

    let mut a = Attrs::new(flags, ECS_ATTRS);
    a.str("cloud.provider", "aws");
    a.str("cloud.platform", "aws_ecs");
    let (region, account, task_id) = parse_task_arn(&task.task_arn);
    if !account.is_empty() {
        a.str("cloud.account.id", account);
    }
    if !region.is_empty() {
        a.str("cloud.region", region);
    }
    if !task_id.is_empty() {
        a.str("aws.ecs.task.id", task_id);
    }
    a.str("aws.ecs.task.arn", task.task_arn.as_str());
    a.str("aws.ecs.task.family", task.family);
    a.str("aws.ecs.task.revision", task.revision);
    a.str(
        "aws.ecs.cluster.arn",
        cluster_arn(&task.cluster, region, account),
    );
    if !task.availability_zone.is_empty() {
        a.str("cloud.availability_zone", task.availability_zone);
    }
    // v4 only
    let launch_type = task.launch_type.to_ascii_lowercase();
    if launch_type == "ec2" || launch_type == "fargate" {
        a.str("aws.ecs.launchtype", launch_type);
    }
    // log data of the task's other running containers that log to CloudWatch (this one is
    // assumed to be the gateway, a sidecar)
    let logs: Vec<&LogOptions> = task
        .containers
        .iter()
        .filter(|c| {
            c.kind == "NORMAL"
                && c.known_status == "RUNNING"
                && c.log_driver == "awslogs"
                && c.docker_id != own.docker_id
                && c.log_options != LogOptions::default()
        })
        .map(|c| &c.log_options)
        .collect();
    if !logs.is_empty() {
        let group_arn =
            |l: &LogOptions| format!("arn:aws:logs:{}:{account}:log-group:{}", l.region, l.group);
        a.list(
            "aws.log.group.names",
            logs.iter().map(|l| l.group.clone()).collect(),
        );
        a.list(
            "aws.log.group.arns",
            logs.iter().map(|l| group_arn(l)).collect(),
        );
        a.list(
            "aws.log.stream.names",
            logs.iter().map(|l| l.stream.clone()).collect(),
        );
        a.list(
            "aws.log.stream.arns",
            logs.iter()
                .map(|l| format!("{}:log-stream:{}", group_arn(l), l.stream))
                .collect(),
        );
    }
    Ok(a.finish())
}

/// `(region, account, task id)` of a task ARN, old (`…:task/<id>`) or new
/// (`…:task/<cluster>/<id>`) format; empty strings when it is not an ARN.
fn parse_task_arn(arn: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        [_, _, _, region, account, task] => {
            (region, account, task.rsplit('/').next().unwrap_or_default())
        }
        _ => ("", "", ""),
    }
}

/// The cluster's ARN: the metadata gives a short name or an ARN.
fn cluster_arn(cluster: &str, region: &str, account: &str) -> String {
    if cluster.contains(':') {
        cluster.to_string()
    } else {
        format!("arn:aws:ecs:{region}:{account}:cluster/{cluster}")
    }
}

#[cfg(test)]
mod arn_tests {
    use super::*;

    #[test]
    fn task_arns_of_both_formats() {
        assert_eq!(
            parse_task_arn("arn:aws:ecs:us-west-2:123456789012:task/my-cluster/abc123"),
            ("us-west-2", "123456789012", "abc123")
        );
        assert_eq!(
            parse_task_arn("arn:aws:ecs:eu-west-1:123456789012:task/def456"),
            ("eu-west-1", "123456789012", "def456")
        );
        assert_eq!(parse_task_arn("not-an-arn"), ("", "", ""));
        assert_eq!(
            cluster_arn("c1", "us-west-2", "42"),
            "arn:aws:ecs:us-west-2:42:cluster/c1"
        );
        assert_eq!(
            cluster_arn("arn:aws:ecs:us-west-2:42:cluster/c1", "x", "y"),
            "arn:aws:ecs:us-west-2:42:cluster/c1"
        );
    }
}
