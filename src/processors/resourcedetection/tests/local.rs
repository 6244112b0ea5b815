//! `env`, `system` (against a fake filesystem root) and `docker` (against a fake Engine API on
//! a unix socket).

use std::path::Path;
use std::time::{Duration, Instant};

use super::super::local::{self, parse_resource_attributes};
use super::super::*;
use super::fake::{attrs, cx, cx_in, map, Fake, Reply};

fn parse_ok(s: &str) -> Vec<(String, String)> {
    parse_resource_attributes(s).unwrap()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn otel_resource_attributes_is_percent_decoded_as_the_spec_says() {
    assert_eq!(
        parse_ok(" service.name = api , host.name=h1,"),
        pairs(&[("service.name", "api"), ("host.name", "h1")])
    );
    // %XX in either case; `+` is not a space (percent-decoding, not form-decoding)
    assert_eq!(
        parse_ok("k8s.pod.labels=app%3Dweb%2Ctier%3dfront,note=a+b%20c,utf=caf%C3%A9"),
        pairs(&[
            ("k8s.pod.labels", "app=web,tier=front"),
            ("note", "a+b c"),
            ("utf", "café")
        ])
    );
    // the first `=` splits; an empty value is a value; empty members are skipped
    assert_eq!(
        parse_ok("a=b=c,,empty=, d = x "),
        pairs(&[("a", "b=c"), ("empty", ""), ("d", "x")])
    );
    // a later member replaces an earlier one
    assert_eq!(parse_ok("k=1,k=2"), pairs(&[("k", "2")]));
    // anything malformed discards the whole value
    for bad in ["a=1,novalue", "=x", "a=%zz", "a=%4", "a=%", "a=%ff%fe"] {
        assert!(parse_resource_attributes(bad).is_err(), "{bad}");
    }
}

#[test]
fn env_detector_reads_the_variable_filters_keys_and_discards_bad_values() {
    let c = EnvConfig::default();
    let got = local::env(
        &c,
        &cx(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=api,team=a%2Fb")]),
    )
    .unwrap();
    assert_eq!(
        attrs(&got),
        map(&[("service.name", "api"), ("team", "a/b")])
    );
    // the deprecated variable, when the current one is unset or blank
    let got = local::env(
        &c,
        &cx(&[("OTEL_RESOURCE_ATTRIBUTES", "  "), ("OTEL_RESOURCE", "x=1")]),
    )
    .unwrap();
    assert_eq!(attrs(&got), map(&[("x", "1")]));
    // unset: nothing, and not an error
    assert_eq!(local::env(&c, &cx(&[])), Ok(Vec::new()));
    // malformed: an error, nothing kept
    let e = local::env(&c, &cx(&[("OTEL_RESOURCE_ATTRIBUTES", "ok=1,bad=%G1")])).unwrap_err();
    assert!(matches!(e, Miss::Failed(m) if m.contains("OTEL_RESOURCE_ATTRIBUTES")));
    // included / excluded with `*`
    let c: EnvConfig = serde_norway::from_str(
        "attributes: {included: ['service.*', 'team'], excluded: ['*.secret']}",
    )
    .unwrap();
    let got = local::env(
        &c,
        &cx(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=api,service.secret=x,team=a,other=b",
        )]),
    )
    .unwrap();
    assert_eq!(attrs(&got), map(&[("service.name", "api"), ("team", "a")]));
}

/// A filesystem root with the files the system detector reads.
fn root(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn system_cfg(yaml: &str) -> SystemConfig {
    serde_norway::from_str(yaml).unwrap()
}

fn host_files() -> tempfile::TempDir {
    root(&[
        ("/proc/sys/kernel/hostname", "box1\n"),
        ("/proc/sys/kernel/ostype", "Linux\n"),
        ("/proc/sys/kernel/osrelease", "6.1.0-18-amd64\n"),
        ("/proc/sys/kernel/version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1\n"),
        (
            "/etc/hosts",
            "127.0.0.1 localhost\n# 10.0.0.9 box1.wrong.example box1\n10.0.0.5\tbox1.corp.example box1 # me\n",
        ),
        ("/etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
        (
            "/etc/os-release",
            "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        ),
    ])
}

#[test]
fn system_detector_defaults_give_the_fqdn_and_os_type() {
    let dir = host_files();
    let got = local::system(&SystemConfig::default(), &cx_in(&[], dir.path(), 1000)).unwrap();
    // `dns` first: the canonical name /etc/hosts gives the kernel's hostname (comments skipped)
    assert_eq!(
        attrs(&got),
        map(&[
            ("host.name", "box1.corp.example"),
            ("os.type", local::os_type(std::env::consts::OS)),
        ])
    );
}

#[test]
fn system_detector_hostname_sources_and_switches() {
    let dir = host_files();
    let cx = cx_in(&[], dir.path(), 1000);
    let c = system_cfg(
        "hostname_sources: [cname, lookup, os]\nresource_attributes:\n  host.id: {enabled: true}\n  host.arch: {enabled: true}\n  os.description: {enabled: true}\n  os.type: {enabled: false}\n",
    );
    let got = attrs(&local::system(&c, &cx).unwrap());
    assert_eq!(got["host.name"], "box1"); // cname and lookup need DNS: `os` answers
    assert_eq!(got["host.id"], "0123456789abcdef0123456789abcdef");
    assert_eq!(got["host.arch"], local::host_arch(std::env::consts::ARCH));
    assert_eq!(
        got["os.description"],
        format!(
            "Debian GNU/Linux 12 (bookworm) (Linux box1 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 {})",
            std::env::consts::ARCH
        )
    );
    assert!(!got.contains_key("os.type"));
    // no source gives a name: the detector fails, as the Collector's
    let e = local::system(&system_cfg("hostname_sources: [cname]"), &cx).unwrap_err();
    assert!(matches!(e, Miss::Failed(_)));
    // the dbus machine id when /etc/machine-id is missing; no id at all: no host.id
    let dbus = root(&[
        ("/etc/hostname", "box2"),
        ("/var/lib/dbus/machine-id", "feedface"),
    ]);
    let c = system_cfg("resource_attributes: {host.id: {enabled: true}}");
    let got = attrs(&local::system(&c, &cx_in(&[], dbus.path(), 1000)).unwrap());
    assert_eq!(got["host.name"], "box2"); // not in /etc/hosts: `os`
    assert_eq!(got["host.id"], "feedface");
    let bare = root(&[("/etc/hostname", "box3")]);
    let got = attrs(&local::system(&c, &cx_in(&[], bare.path(), 1000)).unwrap());
    assert!(!got.contains_key("host.id"));
}

#[test]
fn semantic_convention_names_for_os_and_arch() {
    assert_eq!(local::os_type("linux"), "linux");
    assert_eq!(local::os_type("macos"), "darwin");
    assert_eq!(local::os_type("dragonfly"), "dragonflybsd");
    assert_eq!(local::host_arch("x86_64"), "amd64");
    assert_eq!(local::host_arch("aarch64"), "arm64");
    assert_eq!(local::host_arch("arm"), "arm32");
    assert_eq!(local::host_arch("powerpc64"), "ppc64");
    assert_eq!(local::host_arch("s390x"), "s390x");
}

#[tokio::test]
async fn docker_detector_asks_the_engine_api_over_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    let engine = Fake::start_unix(&sock, |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/info") => {
            Reply::ok(r#"{"Name":"docker-host-7","OSType":"linux","Containers":3}"#)
        }
        _ => Reply::status(404, r#"{"message":"page not found"}"#),
    })
    .await;
    let host = format!("unix://{}", sock.display());
    let got = local::docker(&Flags::default(), &cx(&[("DOCKER_HOST", &host)]))
        .await
        .unwrap();
    assert_eq!(
        attrs(&got),
        map(&[("host.name", "docker-host-7"), ("os.type", "linux")])
    );
    let seen = engine.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("host"), Some("docker"));

    // the default socket path, under the root
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/run")).unwrap();
    let _default = Fake::start_unix(&root.path().join("var/run/docker.sock"), |_| {
        Reply::ok(r#"{"Name":"d2","OSType":"windows"}"#)
    })
    .await;
    let got = local::docker(&Flags::default(), &cx_in(&[], root.path(), 1000))
        .await
        .unwrap();
    assert_eq!(
        attrs(&got),
        map(&[("host.name", "d2"), ("os.type", "windows")])
    );

    // an answer other than 2xx is a failure
    let sock3 = dir.path().join("old.sock");
    let _old = Fake::start_unix(&sock3, |_| Reply::status(500, "{}")).await;
    let e = local::docker(
        &Flags::default(),
        &cx(&[("DOCKER_HOST", &format!("unix://{}", sock3.display()))]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Miss::Failed(m) if m.contains("500")));
}

#[tokio::test]
async fn no_docker_socket_is_absent_at_once() {
    let started = Instant::now();
    let e = local::docker(
        &Flags::default(),
        &cx_in(&[], Path::new("/nonexistent"), 1000),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, Miss::Absent(m) if m.contains("/var/run/docker.sock")),
        "{e:?}"
    );
    // a socket file nobody listens on
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let e = local::docker(
        &Flags::default(),
        &cx(&[("DOCKER_HOST", &format!("unix://{}", path.display()))]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Miss::Absent(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}
