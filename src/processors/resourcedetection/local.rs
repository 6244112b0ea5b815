//! The detectors that ask this machine: `env` (`OTEL_RESOURCE_ATTRIBUTES`), `system` (files
//! only: the kernel's hostname, `/etc/hosts`, the machine id, `/etc/os-release`) and `docker`
//! (the Engine API over its unix socket, or `DOCKER_HOST`).

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde::Deserialize;

use super::common::{json, Attrs, Cx, Miss};
use super::{on, undetected, AttrDefault, EnvConfig, Flags, SystemConfig};
use crate::component::Diagnostics;

/// `system`'s attributes and their defaults (the Collector's `metadata.yaml`).
pub const SYSTEM_ATTRS: &[AttrDefault] = &[
    on("host.name", true),
    on("os.type", true),
    on("host.id", false),
    on("host.arch", false),
    on("os.description", false),
    undetected("host.ip"),
    undetected("host.mac"),
    undetected("host.interface"),
    undetected("host.cpu.vendor.id"),
    undetected("host.cpu.family"),
    undetected("host.cpu.model.id"),
    undetected("host.cpu.model.name"),
    undetected("host.cpu.stepping"),
    undetected("host.cpu.cache.l2.size"),
    undetected("os.build.id"),
    undetected("os.name"),
    undetected("os.version"),
];

/// `docker`'s attributes and their defaults.
pub const DOCKER_ATTRS: &[AttrDefault] = &[
    on("host.name", true),
    on("os.type", true),
    undetected("container.name"),
    undetected("container.image.name"),
    undetected("container.image.id"),
    undetected("container.image.tags"),
];

/// Every `hostname_sources` value the Collector accepts.
pub const HOSTNAME_SOURCES: &[&str] = &["dns", "os", "cname", "lookup"];
const DEFAULT_HOSTNAME_SOURCES: &[&str] = &["dns", "os"];

/// Bound on a Docker `/info` answer.
const DOCKER_ANSWER_LIMIT: usize = 1 << 20;

// ---- env ----------------------------------------------------------------------------------

/// `env`: the attributes in `OTEL_RESOURCE_ATTRIBUTES` (else the deprecated `OTEL_RESOURCE`),
/// filtered by `env.attributes`. A malformed value is discarded whole, as the specification
/// says.
pub(crate) fn env(cfg: &EnvConfig, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
    let (var, raw) = match cx.var("OTEL_RESOURCE_ATTRIBUTES") {
        Some(v) => ("OTEL_RESOURCE_ATTRIBUTES", v),
        None => match cx.var("OTEL_RESOURCE") {
            Some(v) => ("OTEL_RESOURCE", v),
            None => return Ok(Vec::new()),
        },
    };
    let pairs = parse_resource_attributes(&raw)
        .map_err(|e| Miss::Failed(format!("{var} is malformed and discarded whole: {e}")))?;
    let keep = |k: &str| {
        let inc = &cfg.attributes.included;
        (inc.is_empty() || inc.iter().any(|p| glob(p, k)))
            && !cfg.attributes.excluded.iter().any(|p| glob(p, k))
    };
    Ok(pairs
        .into_iter()
        .filter(|(k, _)| keep(k))
        .map(|(key, v)| KeyValue {
            key,
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v)),
            }),
            ..Default::default()
        })
        .collect())
}

/// Parses `key1=value1,key2=value2`: members separated by `,`, blanks around keys and values
/// trimmed, values percent-decoded (`%2C` is `,`; `+` stays `+`) and UTF-8. A member without
/// `=` or with an empty key, a broken `%` escape or bytes that are not UTF-8 make the whole
/// value an error. A later member replaces an earlier one with the same key.
pub fn parse_resource_attributes(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for member in s.split(',') {
        if member.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = member.split_once('=') else {
            return Err(format!("{:?} is not key=value", member.trim()));
        };
        let key = k.trim();
        if key.is_empty() {
            return Err(format!("{:?} has no key", member.trim()));
        }
        let value = percent_decode(v.trim()).map_err(|e| format!("{key}: {e}"))?;
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value,
            None => out.push((key.to_string(), value)),
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    let esc = String::from_utf8_lossy(&b[i..b.len().min(i + 3)]);
                    format!("broken percent escape {esc:?}")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded value is not UTF-8".to_string())
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

// ---- system -------------------------------------------------------------------------------

pub(crate) fn validate_system(cfg: &SystemConfig, path: &str, diag: &mut Diagnostics) {
    for (i, s) in cfg.hostname_sources.iter().enumerate() {
        let p = format!("{path}.hostname_sources[{i}]");
        match s.as_str() {
            "dns" | "os" => {}
            "cname" | "lookup" => diag.warn(
                p,
                format!(
                    "{s:?} needs DNS queries, which otelgw does not make: this source never \
                     gives a name and the next one is tried"
                ),
            ),
            _ => diag.error(
                p,
                format!(
                    "invalid hostname source {s:?} (known: {})",
                    HOSTNAME_SOURCES.join(", ")
                ),
            ),
        }
    }
}

/// `system`: `host.name` from the first `hostname_sources` entry that gives one (`os`: the
/// kernel's hostname; `dns`: that name's canonical name in `/etc/hosts`; `cname` and `lookup`
/// need DNS and give nothing), then `os.type`, `host.id` (the machine id), `host.arch`,
/// `os.description`. Without a hostname the detector fails, as the Collector's does.
pub(crate) fn system(cfg: &SystemConfig, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
    let sources: Vec<&str> = if cfg.hostname_sources.is_empty() {
        DEFAULT_HOSTNAME_SOURCES.to_vec()
    } else {
        cfg.hostname_sources.iter().map(String::as_str).collect()
    };
    let name = sources
        .iter()
        .find_map(|s| match *s {
            "os" => os_hostname(cx),
            "dns" => hosts_fqdn(cx),
            _ => None,
        })
        .ok_or_else(|| {
            Miss::Failed(format!(
                "no hostname source gave a name ({})",
                sources.join(", ")
            ))
        })?;
    let mut a = Attrs::new(&cfg.resource_attributes, SYSTEM_ATTRS);
    a.str("host.name", name);
    a.str("os.type", os_type(std::env::consts::OS));
    if a.on("host.id") {
        match host_id(cx) {
            Some(id) => a.str("host.id", id),
            None => tracing::warn!(
                "system detector: no machine id in /etc/machine-id or /var/lib/dbus/machine-id; \
                 host.id is not set"
            ),
        }
    }
    a.str("host.arch", host_arch(std::env::consts::ARCH));
    if a.on("os.description") {
        if let Some(d) = os_description(cx) {
            a.str("os.description", d);
        }
    }
    Ok(a.finish())
}

/// The kernel's hostname (what `uname -n` and Go's `os.Hostname` give).
fn os_hostname(cx: &Cx) -> Option<String> {
    cx.file("/proc/sys/kernel/hostname")
        .or_else(|| cx.file("/etc/hostname"))
}

/// The canonical name of the kernel's hostname in `/etc/hosts`: the first name of the first
/// line that lists it.
fn hosts_fqdn(cx: &Cx) -> Option<String> {
    let host = os_hostname(cx)?;
    let hosts = cx.file("/etc/hosts")?;
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace().skip(1);
        let canonical = fields.next()?;
        (canonical == host || fields.any(|f| f == host)).then(|| canonical.to_string())
    })
}

/// The machine id, as the OpenTelemetry SDKs read it on Linux.
fn host_id(cx: &Cx) -> Option<String> {
    cx.file("/etc/machine-id")
        .or_else(|| cx.file("/var/lib/dbus/machine-id"))
}

/// `os.type` from Rust's OS name (the semantic conventions' values).
pub fn os_type(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        "dragonfly" => "dragonflybsd",
        "illumos" => "solaris",
        other => other,
    }
}

/// `host.arch` from Rust's architecture name (the semantic conventions' values).
pub fn host_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm32",
        "powerpc" => "ppc32",
        "powerpc64" => "ppc64",
        other => other,
    }
}

/// `PRETTY_NAME (sysname nodename release version machine)`, as the Go SDK writes it; either
/// half alone when the other is unknown.
fn os_description(cx: &Cx) -> Option<String> {
    let pretty = cx
        .file("/etc/os-release")
        .or_else(|| cx.file("/usr/lib/os-release"))
        .and_then(|t| {
            t.lines().find_map(|l| {
                let v = l.strip_prefix("PRETTY_NAME=")?;
                Some(v.trim().trim_matches('"').trim_matches('\'').to_string())
            })
        })
        .filter(|v| !v.is_empty());
    let kernel = |f: &str| cx.file(&format!("/proc/sys/kernel/{f}"));
    let uname = match (kernel("ostype"), kernel("osrelease")) {
        (Some(sys), Some(release)) => Some(
            [
                Some(sys),
                kernel("hostname"),
                Some(release),
                kernel("version"),
                Some(std::env::consts::ARCH.to_string()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        ),
        _ => None,
    };
    match (pretty, uname) {
        (Some(p), Some(u)) => Some(format!("{p} ({u})")),
        (p, u) => p.or(u),
    }
}

// ---- docker -------------------------------------------------------------------------------

/// The part of the Engine API's `GET /info` the detector reads.
#[derive(Deserialize)]
struct DockerInfo {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "OSType", default)]
    os_type: String,
}

/// `docker`: the Docker host's name and OS type from the Engine API (`GET /info`) over
/// `/var/run/docker.sock`, or where `DOCKER_HOST` says (`unix://path` or `tcp://host:port`).
pub(crate) async fn docker(flags: &Flags, cx: &Cx) -> Result<Vec<KeyValue>, Miss> {
    let info: DockerInfo = match cx.var("DOCKER_HOST") {
        Some(h) if h.starts_with("tcp://") || h.starts_with("http://") => {
            let base = format!("http://{}", h.split_once("://").map_or("", |x| x.1));
            json(
                cx.client
                    .get(format!("{}/info", base.trim_end_matches('/'))),
                "the Docker Engine API",
            )
            .await?
        }
        Some(h) => match h.strip_prefix("unix://") {
            Some(path) => docker_info_unix(Path::new(path)).await?,
            None => {
                return Err(Miss::Failed(format!(
                    "DOCKER_HOST={h:?} is neither unix:// nor tcp://"
                )))
            }
        },
        None => docker_info_unix(&cx.path("/var/run/docker.sock")).await?,
    };
    let mut a = Attrs::new(flags, DOCKER_ATTRS);
    a.str("host.name", info.name);
    a.str("os.type", os_type(&info.os_type).to_string());
    Ok(a.finish())
}

async fn docker_info_unix(path: &Path) -> Result<DockerInfo, Miss> {
    let what = format!("the Docker socket {}", path.display());
    if !path.exists() {
        return Err(Miss::Absent(format!(
            "no Docker socket at {}",
            path.display()
        )));
    }
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| Miss::Absent(format!("{what} does not accept connections ({e})")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| Miss::Failed(format!("{what}: {e}")))?;
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/info")
        .header(http::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Miss::Failed(format!("{what}: {e}")))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Miss::Failed(format!("{what}: {e}")))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), DOCKER_ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|e| Miss::Failed(format!("{what}: cannot read the answer ({e})")))?
            .to_bytes();
        if !status.is_success() {
            return Err(Miss::Failed(format!("{what}: GET /info answered {status}")));
        }
        serde_json::from_slice::<DockerInfo>(&body)
            .map_err(|e| Miss::Failed(format!("{what}: /info is not the expected JSON ({e})")))
    }
    .await;
    conn.abort();
    result
}
