//! The cloud detectors against fake metadata servers that speak the documented APIs: the
//! paths, the required headers (requests without them are refused, as the real services do),
//! the IMDSv2 token flow; and the same detectors with nothing listening.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::{aws, azure, gcp, Flags, Miss, Toggle};
use super::fake::{attrs, closed_port, cx, map, Fake, Reply, Seen};

fn flags(pairs: &[(&str, bool)]) -> Flags {
    pairs
        .iter()
        .map(|(k, on)| (k.to_string(), Toggle { enabled: *on }))
        .collect()
}

const TOKEN: &str = "AQAEAFakeToken==";
const IDENTITY: &str = r#"{
  "accountId": "123456789012", "architecture": "x86_64", "availabilityZone": "us-west-2b",
  "imageId": "ami-5fb8c835", "instanceId": "i-1234567890abcdef0", "instanceType": "t2.micro",
  "pendingTime": "2016-11-19T16:32:11Z", "privateIp": "10.158.112.84", "region": "us-west-2",
  "version": "2017-09-30"
}"#;

/// IMDS that only does IMDSv2: a token from `PUT /latest/api/token` (which must say its TTL),
/// then GETs that carry it; anything else is refused as IMDS refuses it.
fn imds_v2(r: &Seen) -> Reply {
    if r.path == "/latest/api/token" {
        return match (
            r.method.as_str(),
            r.header("x-aws-ec2-metadata-token-ttl-seconds"),
        ) {
            ("PUT", Some(ttl)) if ttl.parse::<u32>().is_ok_and(|t| (1..=21600).contains(&t)) => {
                Reply::ok(TOKEN)
            }
            ("PUT", _) => Reply::status(400, ""),
            _ => Reply::status(405, ""),
        };
    }
    if r.method != "GET" || r.header("x-aws-ec2-metadata-token") != Some(TOKEN) {
        return Reply::status(401, "");
    }
    match r.path.as_str() {
        "/latest/meta-data/instance-id" => Reply::ok("i-1234567890abcdef0"),
        "/latest/meta-data/hostname" => Reply::ok("ip-10-158-112-84.us-west-2.compute.internal"),
        "/latest/dynamic/instance-identity/document" => Reply::ok(IDENTITY),
        _ => Reply::status(404, ""),
    }
}

#[tokio::test]
async fn ec2_takes_an_imdsv2_token_then_reads_the_identity_document() {
    let fake = Fake::start(imds_v2).await;
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.base.as_str())];
    let got = aws::ec2(&Flags::default(), &cx(&env)).await.unwrap();
    assert_eq!(
        attrs(&got),
        map(&[
            ("cloud.provider", "aws"),
            ("cloud.platform", "aws_ec2"),
            ("cloud.region", "us-west-2"),
            ("cloud.account.id", "123456789012"),
            ("cloud.availability_zone", "us-west-2b"),
            ("host.id", "i-1234567890abcdef0"),
            ("host.image.id", "ami-5fb8c835"),
            ("host.type", "t2.micro"),
            ("host.name", "ip-10-158-112-84.us-west-2.compute.internal"),
        ])
    );
    let seen = fake.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("PUT", "/latest/api/token")
    );
    assert!(seen[1..]
        .iter()
        .all(|r| r.header("x-aws-ec2-metadata-token") == Some(TOKEN)));

    // switches off
    let f = flags(&[("host.name", false), ("cloud.account.id", false)]);
    let got = attrs(&aws::ec2(&f, &cx(&env)).await.unwrap());
    assert!(!got.contains_key("host.name") && !got.contains_key("cloud.account.id"));
    assert_eq!(got["host.id"], "i-1234567890abcdef0");
}

#[tokio::test]
async fn ec2_falls_back_to_imdsv1_where_there_are_no_tokens() {
    let fake = Fake::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("PUT", _) => Reply::status(404, ""),
        (_, "/latest/meta-data/instance-id") => Reply::ok("i-v1"),
        (_, "/latest/meta-data/hostname") => Reply::ok("v1-host"),
        (_, "/latest/dynamic/instance-identity/document") => {
            Reply::ok(r#"{"instanceId":"i-v1","region":"eu-west-1"}"#)
        }
        _ => Reply::status(404, ""),
    })
    .await;
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.base.as_str())];
    let got = attrs(&aws::ec2(&Flags::default(), &cx(&env)).await.unwrap());
    assert_eq!(got["host.id"], "i-v1");
    assert_eq!(got["cloud.region"], "eu-west-1");
    assert!(fake.seen()[1..]
        .iter()
        .all(|r| r.header("x-aws-ec2-metadata-token").is_none()));
}

#[tokio::test]
async fn ec2_without_imds_is_absent() {
    let closed = closed_port();
    let started = Instant::now();
    let e = aws::ec2(
        &Flags::default(),
        &cx(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &closed)]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, Miss::Absent(m) if m.contains("not reachable")),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let e = aws::ec2(
        &Flags::default(),
        &cx(&[("AWS_EC2_METADATA_DISABLED", "true")]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Miss::Absent(_)));
    // IMDS that refuses the token's GETs (a token was issued, then not accepted): a failure
    let fake = Fake::start(|r| match r.method.as_str() {
        "PUT" => Reply::ok("t"),
        _ => Reply::status(401, ""),
    })
    .await;
    let e = aws::ec2(
        &Flags::default(),
        &cx(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &fake.base)]),
    )
    .await
    .unwrap_err();
    assert!(matches!(&e, Miss::Failed(m) if m.contains("401")), "{e:?}");
}

#[tokio::test]
async fn eks_needs_kubernetes_and_imds() {
    let fake = Fake::start(imds_v2).await;
    let imds = ("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.base.as_str());
    let e = aws::eks(&Flags::default(), &cx(&[imds])).await.unwrap_err();
    assert!(matches!(&e, Miss::Absent(m) if m.contains("KUBERNETES_SERVICE_HOST")));
    let k8s = ("KUBERNETES_SERVICE_HOST", "10.100.0.1");
    let got = aws::eks(&Flags::default(), &cx(&[imds, k8s]))
        .await
        .unwrap();
    assert_eq!(
        attrs(&got),
        map(&[("cloud.provider", "aws"), ("cloud.platform", "aws_eks")])
    );
    // the defaults need no identity document
    assert!(fake
        .seen()
        .iter()
        .all(|r| r.path != "/latest/dynamic/instance-identity/document"));
    let f = flags(&[("cloud.region", true), ("host.name", true)]);
    let got = attrs(&aws::eks(&f, &cx(&[imds, k8s])).await.unwrap());
    assert_eq!(got["cloud.region"], "us-west-2");
    assert_eq!(
        got["host.name"],
        "ip-10-158-112-84.us-west-2.compute.internal"
    );
    // Kubernetes, but no IMDS
    let closed = closed_port();
    let e = aws::eks(
        &Flags::default(),
        &cx(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &closed), k8s]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Miss::Absent(_)));
}

const TASK: &str = r#"{
  "Cluster": "default",
  "TaskARN": "arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c",
  "Family": "curltest", "Revision": "26", "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING",
  "AvailabilityZone": "us-west-2d", "LaunchType": "FARGATE",
  "Containers": [
    {"DockerId": "self-id", "Name": "otelgw", "Type": "NORMAL", "KnownStatus": "RUNNING",
     "LogDriver": "awslogs",
     "LogOptions": {"awslogs-group": "/ecs/gw", "awslogs-region": "us-west-2", "awslogs-stream": "ecs/gw/1"}},
    {"DockerId": "app-id", "Name": "app", "Type": "NORMAL", "KnownStatus": "RUNNING",
     "LogDriver": "awslogs",
     "LogOptions": {"awslogs-group": "/ecs/app", "awslogs-region": "us-west-2", "awslogs-stream": "ecs/app/2"}},
    {"DockerId": "init-id", "Name": "init", "Type": "NORMAL", "KnownStatus": "STOPPED",
     "LogDriver": "awslogs",
     "LogOptions": {"awslogs-group": "/ecs/init", "awslogs-region": "us-west-2", "awslogs-stream": "x"}},
    {"DockerId": "pause-id", "Name": "~internal~ecs~pause", "Type": "CNI_PAUSE", "KnownStatus": "RUNNING"}
  ]
}"#;

#[tokio::test]
async fn ecs_reads_the_task_and_container_metadata_v4() {
    let fake = Fake::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v4/abc-123/task") => Reply::ok(TASK),
        ("GET", "/v4/abc-123") => Reply::ok(r#"{"DockerId":"self-id","Name":"otelgw"}"#),
        _ => Reply::status(404, ""),
    })
    .await;
    let uri = format!("{}/v4/abc-123", fake.base);
    let got = aws::ecs(
        &Flags::default(),
        &cx(&[("ECS_CONTAINER_METADATA_URI_V4", &uri)]),
    )
    .await
    .unwrap();
    let arn = "arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c";
    assert_eq!(
        attrs(&got),
        map(&[
            ("cloud.provider", "aws"),
            ("cloud.platform", "aws_ecs"),
            ("cloud.account.id", "111122223333"),
            ("cloud.region", "us-west-2"),
            ("cloud.availability_zone", "us-west-2d"),
            ("aws.ecs.task.id", "158d1c8083dd49d6b527399fd6414f5c"),
            ("aws.ecs.task.arn", arn),
            ("aws.ecs.task.family", "curltest"),
            ("aws.ecs.task.revision", "26"),
            (
                "aws.ecs.cluster.arn",
                "arn:aws:ecs:us-west-2:111122223333:cluster/default"
            ),
            ("aws.ecs.launchtype", "fargate"),
            // only the other running container that logs to CloudWatch
            ("aws.log.group.names", "/ecs/app"),
            (
                "aws.log.group.arns",
                "arn:aws:logs:us-west-2:111122223333:log-group:/ecs/app"
            ),
            ("aws.log.stream.names", "ecs/app/2"),
            (
                "aws.log.stream.arns",
                "arn:aws:logs:us-west-2:111122223333:log-group:/ecs/app:log-stream:ecs/app/2"
            ),
        ])
    );
    // v3 when v4 is unset
    let got = aws::ecs(
        &flags(&[("aws.log.group.names", false)]),
        &cx(&[("ECS_CONTAINER_METADATA_URI", &uri)]),
    )
    .await
    .unwrap();
    let got = attrs(&got);
    assert_eq!(got["aws.ecs.task.family"], "curltest");
    assert!(!got.contains_key("aws.log.group.names"));
    assert_eq!(got["aws.log.stream.names"], "ecs/app/2");
}

#[tokio::test]
async fn ecs_outside_ecs_is_absent() {
    let e = aws::ecs(&Flags::default(), &cx(&[])).await.unwrap_err();
    assert!(matches!(&e, Miss::Absent(m) if m.contains("ECS_CONTAINER_METADATA_URI_V4")));
    let closed = format!("{}/v4/x", closed_port());
    let e = aws::ecs(
        &Flags::default(),
        &cx(&[("ECS_CONTAINER_METADATA_URI_V4", &closed)]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Miss::Absent(_)));
}

/// The GCP metadata server: every request must say `Metadata-Flavor: Google` (else 403, as the
/// real one answers), every answer says it too; `values` are the paths under
/// `/computeMetadata/v1/` it knows (404 otherwise).
fn gcp_server(values: &'static [(&'static str, &'static str)]) -> impl Fn(&Seen) -> Reply {
    move |r: &Seen| {
        if r.header("metadata-flavor") != Some("Google") {
            return Reply::status(403, "Missing Metadata-Flavor:Google header.");
        }
        let path = r.path.trim_start_matches("/computeMetadata/v1/");
        match values.iter().find(|(p, _)| *p == path) {
            Some((_, v)) => Reply::ok(*v),
            None => Reply::status(404, "not found"),
        }
        .header("Metadata-Flavor", "Google")
    }
}

const GCE: &[(&str, &str)] = &[
    ("project/project-id", "my-project"),
    (
        "instance/machine-type",
        "projects/123456/machineTypes/e2-medium",
    ),
    ("instance/zone", "projects/123456/zones/us-central1-a"),
    ("instance/id", "4520031799277581759"),
    ("instance/name", "vm-1"),
    (
        "instance/hostname",
        "vm-1.us-central1-a.c.my-project.internal",
    ),
    (
        "instance/attributes/created-by",
        "projects/123456/zones/us-central1-a/instanceGroupManagers/web-mig",
    ),
];

#[tokio::test]
async fn gcp_on_compute_engine() {
    let fake = Fake::start(gcp_server(GCE)).await;
    let env = [("GCE_METADATA_HOST", fake.host())];
    let got = gcp::gcp(&Flags::default(), &cx(&env)).await.unwrap();
    assert_eq!(
        attrs(&got),
        map(&[
            ("cloud.provider", "gcp"),
            ("cloud.platform", "gcp_compute_engine"),
            ("cloud.account.id", "my-project"),
            ("cloud.availability_zone", "us-central1-a"),
            ("cloud.region", "us-central1"),
            ("host.type", "projects/123456/machineTypes/e2-medium"),
            ("host.id", "4520031799277581759"),
            ("host.name", "vm-1"),
            ("gcp.gce.instance_group_manager.name", "web-mig"),
            ("gcp.gce.instance_group_manager.zone", "us-central1-a"),
        ])
    );
    assert!(fake
        .seen()
        .iter()
        .all(|r| r.header("metadata-flavor") == Some("Google")));
    let f = flags(&[
        ("gcp.gce.instance.name", true),
        ("gcp.gce.instance.hostname", true),
        ("host.name", false),
    ]);
    let got = attrs(&gcp::gcp(&f, &cx(&env)).await.unwrap());
    assert_eq!(got["gcp.gce.instance.name"], "vm-1");
    assert_eq!(
        got["gcp.gce.instance.hostname"],
        "vm-1.us-central1-a.c.my-project.internal"
    );
    assert!(!got.contains_key("host.name"));
}

const GKE: &[(&str, &str)] = &[
    ("project/project-id", "my-project"),
    ("instance/id", "881"),
    ("instance/name", "gke-node-1"),
    ("instance/attributes/cluster-name", "prod-cluster"),
    ("instance/attributes/cluster-location", "europe-west1"),
];

#[tokio::test]
async fn gcp_on_gke_and_cloud_run() {
    let fake = Fake::start(gcp_server(GKE)).await;
    let got = gcp::gcp(
        &Flags::default(),
        &cx(&[
            ("GCE_METADATA_HOST", fake.host()),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        attrs(&got),
        map(&[
            ("cloud.provider", "gcp"),
            ("cloud.platform", "gcp_kubernetes_engine"),
            ("cloud.account.id", "my-project"),
            // a regional cluster: a region, no zone
            ("cloud.region", "europe-west1"),
            ("k8s.cluster.name", "prod-cluster"),
            ("host.id", "881"),
            ("host.name", "gke-node-1"),
        ])
    );

    const RUN: &[(&str, &str)] = &[
        ("project/project-id", "p"),
        ("instance/id", "00bf4bf02d"),
        ("instance/region", "projects/123/regions/us-east1"),
    ];
    let run = Fake::start(gcp_server(RUN)).await;
    let got = gcp::gcp(
        &Flags::default(),
        &cx(&[
            ("GCE_METADATA_HOST", run.host()),
            ("K_CONFIGURATION", "svc"),
            ("K_SERVICE", "svc"),
            ("K_REVISION", "svc-00001-abc"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        attrs(&got),
        map(&[
            ("cloud.provider", "gcp"),
            ("cloud.platform", "gcp_cloud_run"),
            ("cloud.account.id", "p"),
            ("cloud.region", "us-east1"),
            ("faas.name", "svc"),
            ("faas.version", "svc-00001-abc"),
            ("faas.instance", "00bf4bf02d"),
        ])
    );
}

#[tokio::test]
async fn gcp_elsewhere_is_absent() {
    let closed = closed_port();
    let e = gcp::gcp(
        &Flags::default(),
        &cx(&[("GCE_METADATA_HOST", closed.trim_start_matches("http://"))]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Miss::Absent(_)), "{e:?}");
    // something answers, but not as Google's metadata server
    let other = Fake::start(|_| Reply::ok("hello")).await;
    let e = gcp::gcp(
        &Flags::default(),
        &cx(&[("GCE_METADATA_HOST", other.host())]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, Miss::Absent(m) if m.contains("Metadata-Flavor")),
        "{e:?}"
    );
}

const COMPUTE: &str = r#"{
  "azEnvironment": "AzurePublicCloud", "location": "westeurope", "name": "vm-az-1",
  "resourceGroupName": "MC_rg-prod_aks-prod_westeurope",
  "subscriptionId": "8d10da13-8125-4ba9-a717-bf7490507b3d",
  "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6", "vmScaleSetName": "aks-nodepool1-vmss",
  "vmSize": "Standard_D2s_v3", "zone": "1"
}"#;

/// Azure IMDS: `Metadata: true` and an `api-version` are required (400 otherwise, as the real
/// service answers).
fn azure_imds(hits: Arc<std::sync::atomic::AtomicUsize>) -> impl Fn(&Seen) -> Reply {
    move |r: &Seen| {
        hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if !r
            .header("metadata")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Reply::status(
                400,
                r#"{"error":"Bad request. Required metadata header not specified"}"#,
            );
        }
        if !r.query.split('&').any(|q| q.starts_with("api-version=")) {
            return Reply::status(
                400,
                r#"{"error":"Bad request. api-version was not specified"}"#,
            );
        }
        match r.path.as_str() {
            "/metadata/instance/compute" => Reply::ok(COMPUTE),
            _ => Reply::status(404, ""),
        }
    }
}

#[tokio::test]
async fn azure_reads_the_compute_document() {
    let fake = Fake::start(azure_imds(Arc::default())).await;
    let env = [("OTELGW_AZURE_IMDS_ENDPOINT", fake.base.as_str())];
    let got = azure::azure(&Flags::default(), &cx(&env)).await.unwrap();
    assert_eq!(
        attrs(&got),
        map(&[
            ("cloud.provider", "azure"),
            ("cloud.platform", "azure_vm"),
            ("cloud.region", "westeurope"),
            ("cloud.account.id", "8d10da13-8125-4ba9-a717-bf7490507b3d"),
            ("host.name", "vm-az-1"),
            ("host.id", "02aab8a4-74ef-476e-8182-f6d2ba4166a6"),
            ("azure.vm.name", "vm-az-1"),
            ("azure.vm.size", "Standard_D2s_v3"),
            ("azure.vm.scaleset.name", "aks-nodepool1-vmss"),
            ("azure.resourcegroup.name", "MC_rg-prod_aks-prod_westeurope"),
        ])
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0]
        .query
        .contains(&format!("api-version={}", azure::API_VERSION)));
    assert!(seen[0].query.contains("format=json"));
}

#[tokio::test]
async fn aks_needs_kubernetes_and_parses_the_cluster_name() {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fake = Fake::start(azure_imds(hits.clone())).await;
    let imds = ("OTELGW_AZURE_IMDS_ENDPOINT", fake.base.as_str());
    let e = azure::aks(&Flags::default(), &cx(&[imds]))
        .await
        .unwrap_err();
    assert!(matches!(e, Miss::Absent(_)));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let k8s = ("KUBERNETES_SERVICE_HOST", "10.0.0.1");
    let got = azure::aks(&Flags::default(), &cx(&[imds, k8s]))
        .await
        .unwrap();
    assert_eq!(
        attrs(&got),
        map(&[("cloud.provider", "azure"), ("cloud.platform", "azure_aks")])
    );
    let f = flags(&[("k8s.cluster.name", true)]);
    let got = attrs(&azure::aks(&f, &cx(&[imds, k8s])).await.unwrap());
    assert_eq!(got["k8s.cluster.name"], "aks-prod");
    // custom or ambiguous groups are kept whole
    assert_eq!(
        azure::cluster_name("MC_rg_my_cluster_eastus"),
        "MC_rg_my_cluster_eastus"
    );
    assert_eq!(azure::cluster_name("custom-infra"), "custom-infra");
    assert_eq!(azure::cluster_name("mc_a_b_c"), "b");
    // Kubernetes, but no IMDS
    let closed = closed_port();
    let e = azure::aks(
        &Flags::default(),
        &cx(&[("OTELGW_AZURE_IMDS_ENDPOINT", &closed), k8s]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Miss::Absent(_)));
}
