//! `resolver.k8s`: the backends are the ready endpoints of a Kubernetes Service, listed from the
//! EndpointSlice API (`discovery.k8s.io/v1`) with the pod's service account, as the Collector's
//! k8s resolver finds them.
//!
//! Contract: every `interval` (an otelgw key; the Collector watches instead of polling) the
//! resolver lists `GET /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices?labelSelector=
//! kubernetes.io/service-name=<service>` on `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`
//! with the service account's bearer token (read again on every list: tokens rotate), trusting
//! only the service account's `ca.crt`. Each address of an endpoint whose `conditions.ready` is
//! not `false` (the API says an unset one means ready) becomes one backend per port in `ports`.
//! A failed list keeps the backends known and is counted as a failed resolution. The pod needs
//! `get`/`list` on `endpointslices` in that namespace (a Role; see the README).
//!
//! The service account directory is `/var/run/secrets/kubernetes.io/serviceaccount`, or
//! `$OTELGW_K8S_SERVICEACCOUNT_DIR` (for running outside a pod with a copied token; the tests
//! use it with a stand-in API server, since no cluster exists where they run).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::component::units::Duration;
use crate::component::Diagnostics;

/// The service account directory of a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `resolver.k8s`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct K8sResolver {
    /// The Service: `name` or `name.namespace` (the pod's own namespace when absent).
    pub service: String,
    /// The backends' ports: each ready address gets one backend per port. Default `[4317]`.
    pub ports: Vec<u16>,
    /// One list request's time limit. Default 1s.
    pub timeout: Duration,
    /// Name backends `hostname.service.namespace:port` (the endpoint's `hostname`, set for
    /// StatefulSet pods behind a headless Service; for TLS names) instead of by IP.
    pub return_hostnames: bool,
    /// How often the endpoints are listed again (otelgw's; the Collector watches). Default 5s.
    pub interval: Duration,
}

impl Default for K8sResolver {
    fn default() -> Self {
        K8sResolver {
            service: String::new(),
            ports: vec![4317],
            timeout: Duration::from_secs(1),
            return_hostnames: false,
            interval: Duration::from_secs(5),
        }
    }
}

impl K8sResolver {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        let (name, ns) = self.name_and_namespace();
        if name.is_empty() || !is_dns_label(name) || ns.is_some_and(|n| !is_dns_label(n)) {
            diag.error(
                format!("{path}.service"),
                "required: a Service name, or name.namespace (lowercase DNS labels)",
            );
        }
        if self.ports.is_empty() || self.ports.contains(&0) {
            diag.error(format!("{path}.ports"), "give at least one port, none 0");
        }
        if self.timeout.is_zero() || self.interval.is_zero() {
            diag.error(path, "interval and timeout must be greater than 0");
        }
    }

    /// `service` split into the name and, when given, the namespace.
    fn name_and_namespace(&self) -> (&str, Option<&str>) {
        match self.service.trim().split_once('.') {
            Some((n, ns)) => (n, Some(ns)),
            None => (self.service.trim(), None),
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A client of the cluster's API server, from the pod's environment and service account.
pub struct Api {
    base: String,
    dir: PathBuf,
    namespace: String,
    service: String,
    client: reqwest::Client,
}

impl Api {
    /// From `$KUBERNETES_SERVICE_HOST`/`_PORT` and the service account directory; an error
    /// names what is missing (not in a pod, no service account token mounted).
    pub fn from_env(cfg: &K8sResolver) -> Result<Api, String> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .map_err(|_| "not in a Kubernetes pod: KUBERNETES_SERVICE_HOST is not set")?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        let dir = std::env::var("OTELGW_K8S_SERVICEACCOUNT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(SERVICE_ACCOUNT_DIR));
        let ca = std::fs::read(dir.join("ca.crt"))
            .map_err(|e| format!("{}: {e}", dir.join("ca.crt").display()))?;
        let ca = reqwest::Certificate::from_pem(&ca)
            .map_err(|e| format!("{}: {e}", dir.join("ca.crt").display()))?;
        let (name, ns) = cfg.name_and_namespace();
        let namespace = match ns {
            Some(ns) => ns.to_string(),
            None => std::fs::read_to_string(dir.join("namespace"))
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("{}: {e}", dir.join("namespace").display()))?,
        };
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .timeout(cfg.timeout.get())
            .build()
            .map_err(|e| e.to_string())?;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        Ok(Api {
            base: format!("https://{host}:{port}"),
            dir,
            namespace,
            service: name.to_string(),
            client,
        })
    }

    /// Lists the Service's EndpointSlices: the backends, sorted, without duplicates.
    pub async fn backends(&self, cfg: &K8sResolver) -> Result<Vec<String>, String> {
        let token = std::fs::read_to_string(self.dir.join("token"))
            .map_err(|e| format!("{}: {e}", self.dir.join("token").display()))?;
        let url = format!(
            "{}/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D{}",
            self.base, self.namespace, self.service
        );
        let resp = self
            .client
            .get(&url)
            .bearer_auth(token.trim())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("the API server answered {status}"));
        }
        // a list of a busy Service is a few hundred KB at most; refuse anything absurd
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > 64 << 20 {
            return Err("the EndpointSlice list is over 64 MiB".into());
        }
        let list: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("not an EndpointSlice list: {e}"))?;
        Ok(backends_of(
            &list,
            &cfg.ports,
            cfg.return_hostnames,
            &self.service,
            &self.namespace,
        ))
    }
}

/// The backends an EndpointSlice list gives: each address of a ready endpoint, once per port.
pub fn backends_of(
    list: &serde_json::Value,
    ports: &[u16],
    return_hostnames: bool,
    service: &str,
    namespace: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let items = list["items"].as_array().map_or(&[][..], Vec::as_slice);
    for slice in items {
        let endpoints = slice["endpoints"].as_array().map_or(&[][..], Vec::as_slice);
        for ep in endpoints {
            // the API: an unset `ready` is to be read as ready
            if ep["conditions"]["ready"].as_bool() == Some(false) {
                continue;
            }
            let hostname = ep["hostname"].as_str().filter(|_| return_hostnames);
            let addresses = ep["addresses"].as_array().map_or(&[][..], Vec::as_slice);
            for a in addresses {
                let Some(ip) = a.as_str() else { continue };
                let host = match hostname {
                    Some(h) => format!("{h}.{service}.{namespace}"),
                    None if ip.contains(':') => format!("[{ip}]"),
                    None => ip.to_string(),
                };
                for p in ports {
                    out.push(format!("{host}:{p}"));
                }
                if hostname.is_some() {
                    // one name for the endpoint, however many addresses it has
                    break;
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_addresses_times_ports_and_hostnames() {
        let list = serde_json::json!({
            "kind": "EndpointSliceList",
            "items": [
                {"addressType": "IPv4", "endpoints": [
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": true}, "hostname": "gw-0"},
                    {"addresses": ["10.0.0.3"], "conditions": {"ready": false}, "hostname": "gw-1"},
                    {"addresses": ["10.0.0.4"], "conditions": {}, "hostname": "gw-2"}
                ]},
                {"addressType": "IPv6", "endpoints": [
                    {"addresses": ["fd00::5"], "conditions": {"ready": true}}
                ]},
                {"endpoints": null}
            ]
        });
        assert_eq!(
            backends_of(&list, &[4317, 4318], false, "gw", "obs"),
            [
                "10.0.0.2:4317",
                "10.0.0.2:4318",
                "10.0.0.4:4317",
                "10.0.0.4:4318",
                "[fd00::5]:4317",
                "[fd00::5]:4318"
            ]
        );
        assert_eq!(
            backends_of(&list, &[4317], true, "gw", "obs"),
            ["[fd00::5]:4317", "gw-0.gw.obs:4317", "gw-2.gw.obs:4317"]
        );
        assert!(backends_of(&serde_json::json!({}), &[4317], false, "gw", "obs").is_empty());
    }

    #[test]
    fn validation_names_the_service_ports_and_durations() {
        let mut d = Diagnostics::default();
        K8sResolver {
            service: "Bad_Name".into(),
            ports: vec![],
            interval: Duration::from_secs(0),
            ..Default::default()
        }
        .validate("r.k8s", &mut d);
        let paths: Vec<&str> = d.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["r.k8s.service", "r.k8s.ports", "r.k8s"]);
        let mut d = Diagnostics::default();
        K8sResolver {
            service: "otelgw-gateway.observability".into(),
            ..Default::default()
        }
        .validate("r.k8s", &mut d);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
    }
}
