//! Config and validation, the merge into resources (decoded and encoded), and detection as a
//! whole: order, timeout, counters. The detectors' own tests are in `local.rs` and `cloud.rs`,
//! against fake metadata servers (`fake.rs`).

mod cloud;
mod fake;
mod local;

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_norway::Value;

use super::*;
use crate::component::ComponentId;
use crate::processors::{Built, ProcessorConfig};
use crate::testdata::{kv, s};
use fake::{attrs, closed_port, cx, Fake, Reply};

fn parse(yaml: &str) -> ResourceDetectionConfig {
    serde_norway::from_str(yaml).unwrap()
}

fn diag(c: &ResourceDetectionConfig) -> Diagnostics {
    let mut d = Diagnostics::default();
    c.validate("processors.resourcedetection", &mut d);
    d
}

fn paths(issues: &[crate::component::Issue]) -> Vec<&str> {
    issues.iter().map(|i| i.path.as_str()).collect()
}

#[test]
fn defaults_are_the_collectors() {
    let c = ResourceDetectionConfig::default();
    assert_eq!(c.detectors, ["env"]);
    assert!(c.override_existing);
    assert_eq!(c.timeout.get(), Duration::from_secs(5));
    let d = diag(&c);
    assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
    // an empty block is the default
    let c = parse("{}");
    assert_eq!(c.detectors, ["env"]);
    assert!(c.override_existing);
}

#[test]
fn a_collector_config_parses_and_validates() {
    let c = parse(
        r#"
detectors: [env, system, docker, ec2, ecs, eks, gcp, azure, aks]
override: false
timeout: 2s
system:
  hostname_sources: [os]
  resource_attributes:
    host.id: {enabled: true}
    os.description: {enabled: true}
ec2:
  resource_attributes:
    host.name: {enabled: false}
eks:
  resource_attributes:
    cloud.region: {enabled: true}
aks:
  resource_attributes:
    k8s.cluster.name: {enabled: true}
env:
  attributes: {included: ["service.*"], excluded: ["service.secret"]}
"#,
    );
    assert!(!c.override_existing);
    assert_eq!(c.timeout.get(), Duration::from_secs(2));
    assert_eq!(c.system.hostname_sources, ["os"]);
    assert!(enabled(
        &c.system.resource_attributes,
        super::local::SYSTEM_ATTRS,
        "host.id"
    ));
    assert!(!enabled(
        &c.ec2.resource_attributes,
        aws::EC2_ATTRS,
        "host.name"
    ));
    assert!(enabled(
        &c.ec2.resource_attributes,
        aws::EC2_ATTRS,
        "host.id"
    ));
    let d = diag(&c);
    assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
}

#[test]
fn unknown_keys_and_detectors_are_errors_with_their_paths() {
    assert!(serde_norway::from_str::<ResourceDetectionConfig>("detector: [env]").is_err());
    assert!(serde_norway::from_str::<ResourceDetectionConfig>(
        "system: {resource_attributes: {host.name: {enabled: true, extra: 1}}}"
    )
    .is_err());
    assert!(serde_norway::from_str::<ResourceDetectionConfig>("docker: {tags: [a]}").is_err());

    let c = parse(
        r#"
detectors: [env, ec3, heroku]
timeout: 0
system:
  hostname_sources: [os, dnss]
  resource_attributes:
    host.nam: {enabled: true}
"#,
    );
    let d = diag(&c);
    let p = "processors.resourcedetection";
    assert_eq!(
        paths(&d.errors),
        [
            format!("{p}.detectors[1]"),
            format!("{p}.detectors[2]"),
            format!("{p}.timeout"),
            format!("{p}.system.hostname_sources[1]"),
            format!("{p}.system.resource_attributes.host.nam"),
        ]
    );
    // the known detectors are listed; a Collector-only one is named as such
    assert!(d.errors[0].message.contains("unknown detector \"ec3\""));
    assert!(d.errors[0]
        .message
        .contains("env, system, docker, ec2, ecs, eks, gcp, azure, aks"));
    assert!(d.errors[1]
        .message
        .contains("a Collector detector otelgw does not have"));
    assert!(d.errors[4].message.contains("host.name, os.type"));
}

#[test]
fn inert_keys_and_undetected_attributes_are_warnings() {
    let c = parse(
        r#"
detectors: []
refresh_interval: 5m
fail_on_missing_metadata: true
ec2: {tags: ["^env$"]}
azure: {tags: [".*"]}
gcp: {labels: ["^team$"]}
eks: {node_from_env_var: K8S_NODE_NAME}
system:
  hostname_sources: [cname, os]
  resource_attributes:
    host.ip: {enabled: true}
    host.mac: {enabled: false}
docker:
  resource_attributes:
    container.name: {enabled: true}
"#,
    );
    let d = diag(&c);
    assert!(d.errors.is_empty(), "{d:?}");
    let p = "processors.resourcedetection";
    let mut got = paths(&d.warnings);
    got.sort();
    let mut want = vec![
        format!("{p}.detectors"),
        format!("{p}.refresh_interval"),
        format!("{p}.fail_on_missing_metadata"),
        format!("{p}.ec2.tags"),
        format!("{p}.azure.tags"),
        format!("{p}.gcp.labels"),
        format!("{p}.eks.node_from_env_var"),
        format!("{p}.system.hostname_sources[0]"),
        format!("{p}.system.resource_attributes.host.ip"),
        format!("{p}.docker.resource_attributes.container.name"),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn both_type_names_parse_and_print_back() {
    for kind in ["resourcedetection", "resource_detection"] {
        let id = ComponentId::parse(&format!("{kind}/x")).unwrap();
        let mut d = Diagnostics::default();
        let v: Value =
            serde_norway::from_str("{detectors: [env, system], override: false}").unwrap();
        let pc = ProcessorConfig::from_value(&id, "p", v, &mut d).unwrap();
        assert!(d.errors.is_empty(), "{d:?}");
        let ProcessorConfig::ResourceDetection(c) = &pc else {
            panic!("{kind} is not resourcedetection");
        };
        assert_eq!(c.detectors, ["env", "system"]);
        // print-config round-trips
        let back: ResourceDetectionConfig = serde_norway::from_value(pc.to_value()).unwrap();
        assert_eq!(back.detectors, ["env", "system"]);
        assert!(!back.override_existing);
    }
}

fn detected(pairs: &[(&str, &str)]) -> Arc<Vec<KeyValue>> {
    Arc::new(pairs.iter().map(|(k, v)| kv(k, s(v))).collect())
}

fn resource(pairs: &[(&str, &str)]) -> Option<Resource> {
    Some(Resource {
        attributes: pairs.iter().map(|(k, v)| kv(k, s(v))).collect(),
        ..Default::default()
    })
}

#[test]
fn override_replaces_own_values_and_appends_new_keys() {
    let found = detected(&[("host.name", "detected"), ("cloud.provider", "aws")]);
    let meta = RequestMeta::default();
    let p = parse("override: true").build(found.clone());
    assert_eq!(p.reads(), crate::processors::Reads::Resources);
    let mut r = resource(&[("service.name", "api"), ("host.name", "own")]);
    p.edit_resource(&mut r, &meta);
    assert_eq!(
        r,
        resource(&[
            ("service.name", "api"),
            ("host.name", "detected"),
            ("cloud.provider", "aws")
        ])
    );

    let p = parse("override: false").build(found);
    let mut r = resource(&[("service.name", "api"), ("host.name", "own")]);
    p.edit_resource(&mut r, &meta);
    assert_eq!(
        r,
        resource(&[
            ("service.name", "api"),
            ("host.name", "own"),
            ("cloud.provider", "aws")
        ])
    );
    // a request without a resource gets one
    let mut none = None;
    p.edit_resource(&mut none, &meta);
    assert_eq!(
        none,
        resource(&[("host.name", "detected"), ("cloud.provider", "aws")])
    );
    // nothing detected: nothing changes, not even an empty resource appears
    let p = parse("{}").build(Arc::default());
    let mut none = None;
    p.edit_resource(&mut none, &meta);
    assert_eq!(none, None);
}

#[test]
fn every_resource_of_a_request_is_edited_decoded_or_encoded() {
    let p = parse("{}").build(detected(&[("deployment.environment", "prod")]));
    let meta = RequestMeta::default();
    let req = crate::testdata::traces(7, 3, 2);
    let mut want = req.clone();
    for rs in &mut want.resource_spans {
        let r = rs.resource.get_or_insert_with(Default::default);
        r.attributes.retain(|a| a.key != "deployment.environment");
        r.attributes.push(kv("deployment.environment", s("prod")));
    }
    // decoded
    let mut t = Telemetry::Traces(req.clone());
    p.process(&mut t, &meta, &mut Rejections::default());
    assert_eq!(t, Telemetry::Traces(want.clone()));
    // encoded: only the resources are rewritten, the spans stay the client's bytes
    let bytes = req.encode_to_vec();
    let edited = crate::wire::edit_resources(&bytes, |r| p.edit_resource(r, &meta)).unwrap();
    assert_eq!(ExportTraceServiceRequest::decode(edited).unwrap(), want);
}

/// A fake EC2 IMDS (IMDSv1 is enough here) whose hostname is `name`.
async fn imds(name: &'static str) -> Fake {
    Fake::start(move |r| match r.path.as_str() {
        "/latest/api/token" => Reply::status(405, ""),
        "/latest/meta-data/instance-id" => Reply::ok("i-1"),
        "/latest/meta-data/hostname" => Reply::ok(name),
        "/latest/dynamic/instance-identity/document" => {
            Reply::ok(r#"{"region":"us-east-1","instanceId":"i-1"}"#)
        }
        _ => Reply::status(404, ""),
    })
    .await
}

#[tokio::test]
async fn earlier_detectors_win_and_each_outcome_is_counted() {
    let ec2 = imds("ip-10-0-0-1.ec2.internal").await;
    let env = [
        ("OTEL_RESOURCE_ATTRIBUTES", "host.name=from-env,team=a"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", ec2.base.as_str()),
    ];
    let reg = Registry::default();
    let c = parse("detectors: [env, ec2, ecs]");
    let got = attrs(&c.detect_with(&cx(&env), "resourcedetection", &reg).await);
    assert_eq!(got["host.name"], "from-env");
    assert_eq!(got["team"], "a");
    assert_eq!(got["cloud.platform"], "aws_ec2");
    let c = parse("detectors: [ec2, env]");
    let got = attrs(&c.detect_with(&cx(&env), "rd/2", &reg).await);
    assert_eq!(got["host.name"], "ip-10-0-0-1.ec2.internal");

    let count = |p: &'static str, d: &'static str, o: &'static str| {
        reg.value(
            names::RESOURCEDETECTION_DETECTOR_RESULTS,
            &[("processor", p), ("detector", d), ("outcome", o)],
        )
    };
    assert_eq!(count("resourcedetection", "env", "success"), Some(1));
    assert_eq!(count("resourcedetection", "ec2", "success"), Some(1));
    // not on ECS: absent, not a failure
    assert_eq!(count("resourcedetection", "ecs", "absent"), Some(1));
    assert_eq!(count("resourcedetection", "ecs", "failure"), None);
    assert_eq!(
        reg.value(
            names::RESOURCEDETECTION_ATTRIBUTES_DETECTED,
            &[("processor", "resourcedetection")]
        ),
        Some(i128::try_from(got.len()).unwrap())
    );
}

#[tokio::test]
async fn a_malformed_answer_is_a_failure_and_adds_nothing() {
    let bad = Fake::start(|_| Reply::ok("{not json")).await;
    let reg = Registry::default();
    let c = parse("detectors: [azure]");
    let got = c
        .detect_with(
            &cx(&[("OTELGW_AZURE_IMDS_ENDPOINT", &bad.base)]),
            "rd",
            &reg,
        )
        .await;
    assert!(got.is_empty());
    assert_eq!(
        reg.value(
            names::RESOURCEDETECTION_DETECTOR_RESULTS,
            &[
                ("processor", "rd"),
                ("detector", "azure"),
                ("outcome", "failure")
            ]
        ),
        Some(1)
    );
}

#[tokio::test]
async fn absent_and_silent_endpoints_add_nothing_within_the_timeout() {
    let silent = Fake::silent().await;
    let closed = closed_port();
    let env = [
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", silent.base.as_str()),
        ("GCE_METADATA_HOST", closed.trim_start_matches("http://")),
        ("OTELGW_AZURE_IMDS_ENDPOINT", silent.base.as_str()),
        ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
    ];
    let c = parse("{detectors: [ec2, gcp, azure, aks, eks], timeout: 300ms}");
    let reg = Registry::default();
    let started = Instant::now();
    let got = c
        .detect_with(
            &fake::cx_in(&env, std::path::Path::new("/nonexistent"), 300),
            "rd",
            &reg,
        )
        .await;
    let took = started.elapsed();
    assert!(got.is_empty(), "{got:?}");
    // all at once, each within its 300ms
    assert!(took < Duration::from_millis(1_500), "took {took:?}");
    for d in ["ec2", "gcp", "azure", "aks", "eks"] {
        assert_eq!(
            reg.value(
                names::RESOURCEDETECTION_DETECTOR_RESULTS,
                &[("processor", "rd"), ("detector", d), ("outcome", "absent")]
            ),
            Some(1),
            "{d}"
        );
    }
}

#[tokio::test]
async fn prepared_once_shared_by_every_pipelines_instance() {
    let id = ComponentId::parse("resourcedetection").unwrap();
    let v: Value = serde_norway::from_str("{detectors: [system], timeout: 1s}").unwrap();
    let pc = ProcessorConfig::from_value(&id, "p", v, &mut Diagnostics::default()).unwrap();
    let reg = Registry::default();
    let prepared = pc.prepare(&id, &reg).await;
    let built: Vec<Arc<dyn Processor>> = [crate::data::Signal::Traces, crate::data::Signal::Logs]
        .into_iter()
        .map(|sig| match pc.build(&id, sig, &reg, &prepared) {
            Built::Inline(p) => p,
            _ => panic!("resourcedetection runs inline"),
        })
        .collect();
    // the detection ran once for the id, whatever the number of pipelines
    assert_eq!(
        reg.value(
            names::RESOURCEDETECTION_DETECTOR_RESULTS,
            &[
                ("processor", "resourcedetection"),
                ("detector", "system"),
                ("outcome", "success")
            ]
        ),
        Some(1)
    );
    for p in &built {
        assert_eq!(p.reads(), crate::processors::Reads::Resources);
        let mut r = None;
        p.edit_resource(&mut r, &RequestMeta::default());
        let r = r.expect("this host has a hostname");
        assert_eq!(
            attrs(&r.attributes)["os.type"],
            super::local::os_type(std::env::consts::OS)
        );
    }
    // the same config, processed without preparing, merges nothing (and does no I/O)
    let Built::Inline(p) = pc.build(&id, crate::data::Signal::Traces, &reg, &Default::default())
    else {
        panic!()
    };
    let mut r = None;
    p.edit_resource(&mut r, &RequestMeta::default());
    assert_eq!(r, None);
}
