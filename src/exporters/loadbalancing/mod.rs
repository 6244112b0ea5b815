//! `loadbalancing` exporter (alias `load_balancing`), as the Collector's: it splits each batch
//! by `routing_key` over a consistent-hash [`ring`] of backends and sends each part with the
//! OTLP gRPC exporter configured under `protocol.otlp` (TLS, compression, headers, timeout are
//! reused for every backend). Backends come from `resolver.static.hostnames` or
//! `resolver.dns` (A/AAAA records of `hostname`, re-resolved every `interval`: a headless
//! Service) or `resolver.k8s` (the Service's ready endpoints from the EndpointSlice API, [`k8s`]).
//! `aws_cloud_map` is a validation error.
//!
//! **Delivery.** The sending queue (`protocol.otlp.sending_queue`) is the exporter's; retries
//! are per backend and per part, never of the whole batch, so what one backend accepted is
//! never sent again. A part whose backend fails `EJECT_AFTER` attempts in a row with a
//! retryable error (refused connection, 503, …) ejects that backend for `EJECT_FOR`: the ring
//! is rebuilt without it and the part is split again over the backends left (its successors),
//! so data queued for a backend that died reaches another one. An ejected backend comes back
//! after its back-off (or when it answers again). Parts rejected permanently are counted as
//! `partial_success` rejections; when every backend is out, the batch waits (backpressure)
//! until one is back or `retry_on_failure.max_elapsed_time` passes, then it is dropped and
//! counted. Self-metrics: `otelcol_loadbalancer_num_backends`,
//! `otelcol_loadbalancer_backend_outcome{endpoint, success}`,
//! `otelcol_loadbalancer_num_resolutions{resolver, success}`,
//! `otelgw_loadbalancer_ejections_total`, `otelgw_loadbalancer_rerouted_items_total`.

pub mod k8s;
pub mod ring;
pub mod split;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::otlp_grpc::{OtlpGrpcConfig, OtlpGrpcExporter};
use super::retry::Backoff;
use super::{ExportError, ExportOutcome, Exporter};
use crate::component::units::Duration;
use crate::component::{BuildError, Diagnostics};
use crate::data::{Encoded, Outgoing, Payload};
use crate::telemetry::metrics::{Counter, Gauge, Registry};
use ring::Ring;

/// Consecutive retryable failures that eject a backend.
const EJECT_AFTER: u32 = 3;
/// How long an ejected backend stays out of the ring.
const EJECT_FOR: StdDuration = StdDuration::from_secs(15);

/// `routing_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RoutingKey {
    #[default]
    #[serde(rename = "traceID")]
    TraceId,
    #[serde(rename = "service")]
    Service,
    #[serde(rename = "resource")]
    Resource,
    #[serde(rename = "metric")]
    Metric,
    #[serde(rename = "streamID")]
    StreamId,
    #[serde(rename = "attributes")]
    Attributes,
}

/// `exporters.loadbalancing`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadBalancingConfig {
    /// What keeps items together: `traceID`, `service`, `resource`, `metric`, `streamID`,
    /// `attributes`. Unset: `traceID` for traces, `service` for metrics and logs (the
    /// Collector's defaults). A key a signal has no use for (`metric` on spans) routes that
    /// signal by `traceID` (spans and records) or `service`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<RoutingKey>,
    /// With `routing_key: attributes`, the attributes whose values are the key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routing_attributes: Vec<String>,
    pub protocol: Protocol,
    pub resolver: Resolver,
}

/// `protocol`: the exporter used for every backend.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocol {
    /// The OTLP gRPC exporter's settings; its `endpoint` is each backend's.
    pub otlp: OtlpGrpcConfig,
}

/// `resolver`: exactly one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resolver {
    #[serde(rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_: Option<StaticResolver>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsResolver>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s: Option<k8s::K8sResolver>,
    /// Not supported by otelgw (a validation error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_cloud_map: Option<serde_norway::Value>,
}

/// `resolver.static`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticResolver {
    /// `host[:port]` of each backend (port 4317 when absent).
    pub hostnames: Vec<String>,
}

/// `resolver.dns`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsResolver {
    /// A name whose A/AAAA records are the backends (a headless Service).
    pub hostname: String,
    /// The backends' port. Default 4317.
    pub port: u16,
    /// Re-resolution period. Default 5s.
    pub interval: Duration,
    /// One resolution's time limit. Default 1s.
    pub timeout: Duration,
}

impl Default for DnsResolver {
    fn default() -> Self {
        DnsResolver {
            hostname: String::new(),
            port: 4317,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        }
    }
}

/// `host[:port]` with the default OTLP port.
fn with_port(h: &str) -> String {
    let h = h.trim();
    let bare = h
        .strip_prefix("http://")
        .or_else(|| h.strip_prefix("https://"))
        .unwrap_or(h);
    let has_port = match bare.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        h.to_string()
    } else {
        format!("{h}:4317")
    }
}

impl LoadBalancingConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        // the protocol's own checks, with a stand-in endpoint (each backend brings its own)
        let mut otlp = self.protocol.otlp.clone();
        if !otlp.endpoint.is_empty() {
            diag.warn(
                format!("{path}.protocol.otlp.endpoint"),
                "ignored: the resolver gives each backend's endpoint",
            );
        }
        otlp.endpoint = "backend:4317".into();
        otlp.validate(&format!("{path}.protocol.otlp"), diag);
        let r = &self.resolver;
        let count = usize::from(r.static_.is_some())
            + usize::from(r.dns.is_some())
            + usize::from(r.k8s.is_some())
            + usize::from(r.aws_cloud_map.is_some());
        if count != 1 {
            diag.error(
                format!("{path}.resolver"),
                "set exactly one of static, dns, k8s, aws_cloud_map",
            );
        }
        if r.aws_cloud_map.is_some() {
            diag.error(
                format!("{path}.resolver.aws_cloud_map"),
                "not supported by otelgw (use dns or k8s)",
            );
        }
        if let Some(k) = &r.k8s {
            k.validate(&format!("{path}.resolver.k8s"), diag);
        }
        if let Some(s) = &r.static_ {
            if s.hostnames.is_empty() {
                diag.error(
                    format!("{path}.resolver.static.hostnames"),
                    "at least one is required",
                );
            }
        }
        if let Some(d) = &r.dns {
            if d.hostname.trim().is_empty() {
                diag.error(format!("{path}.resolver.dns.hostname"), "required");
            }
            if d.interval.is_zero() || d.timeout.is_zero() {
                diag.error(
                    format!("{path}.resolver.dns"),
                    "interval and timeout must be greater than 0",
                );
            }
        }
        self.protocol
            .otlp
            .retry_on_failure
            .validate(&format!("{path}.protocol.otlp.retry_on_failure"), diag);
        if self.routing_key == Some(RoutingKey::Attributes) && self.routing_attributes.is_empty() {
            diag.error(
                format!("{path}.routing_attributes"),
                "required with routing_key: attributes",
            );
        }
    }
}

/// One backend: its exporter and health.
struct Backend {
    exporter: Arc<OtlpGrpcExporter>,
    /// Out of the ring until then.
    ejected_until: Option<Instant>,
    failures: u32,
    ok: Counter,
    failed: Counter,
}

struct Metrics {
    backends: Gauge,
    ejections: Counter,
    rerouted: Counter,
    resolutions_ok: Counter,
    resolutions_failed: Counter,
}

struct Inner {
    id: String,
    cfg: LoadBalancingConfig,
    auth: Option<Arc<crate::net::auth::Authenticator>>,
    backends: Mutex<BTreeMap<String, Backend>>,
    /// The ring of the live backends, rebuilt only when that set changes.
    ring: Mutex<Option<Arc<Ring>>>,
    registry: Arc<Registry>,
    metrics: Metrics,
}

pub struct LoadBalancingExporter {
    inner: Arc<Inner>,
    resolver: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl LoadBalancingExporter {
    pub fn new(
        id: &str,
        cfg: &LoadBalancingConfig,
        reg: &Arc<Registry>,
        auth: Option<Arc<crate::net::auth::Authenticator>>,
    ) -> Result<LoadBalancingExporter, BuildError> {
        let l: &[(&'static str, &str)] = &[("exporter", id)];
        let resolver = if cfg.resolver.dns.is_some() {
            "dns"
        } else if cfg.resolver.k8s.is_some() {
            "k8s"
        } else {
            "static"
        };
        let resolutions = |success: &str| {
            reg.counter(
                "otelcol_loadbalancer_num_resolutions",
                "Resolutions of the backends, by outcome.",
                &[
                    ("exporter", id),
                    ("resolver", resolver),
                    ("success", success),
                ],
            )
        };
        let inner = Arc::new(Inner {
            id: id.to_string(),
            cfg: cfg.clone(),
            auth,
            backends: Mutex::new(BTreeMap::new()),
            ring: Mutex::new(None),
            registry: reg.clone(),
            metrics: Metrics {
                backends: reg.gauge(
                    "otelcol_loadbalancer_num_backends",
                    "Backends in the ring (ejected ones excluded).",
                    l,
                ),
                ejections: reg.counter(
                    "otelgw_loadbalancer_ejections_total",
                    "Backends taken out of the ring after failing in a row.",
                    l,
                ),
                rerouted: reg.counter(
                    "otelgw_loadbalancer_rerouted_items_total",
                    "Items sent to another backend because theirs was ejected or left.",
                    l,
                ),
                resolutions_ok: resolutions("true"),
                resolutions_failed: resolutions("false"),
            },
        });
        let mut resolver_task = None;
        if let Some(s) = &cfg.resolver.static_ {
            inner.set_backends(s.hostnames.iter().map(|h| with_port(h)).collect())?;
            inner.metrics.resolutions_ok.inc();
        }
        if let Some(d) = cfg.resolver.dns.clone() {
            let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
            let me = inner.clone();
            let task = tokio::spawn(async move {
                loop {
                    me.resolve_dns(&d).await;
                    tokio::select! {
                        _ = tokio::time::sleep(d.interval.get()) => {}
                        _ = stop_rx.wait_for(|s| *s) => return,
                    }
                }
            });
            resolver_task = Some((stop, task));
        }
        if let Some(k) = cfg.resolver.k8s.clone() {
            let api = k8s::Api::from_env(&k)
                .map_err(|e| BuildError::Other(format!("exporter {id}: resolver.k8s: {e}")))?;
            let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
            let me = inner.clone();
            let task = tokio::spawn(async move {
                loop {
                    me.resolve_k8s(&api, &k).await;
                    tokio::select! {
                        _ = tokio::time::sleep(k.interval.get()) => {}
                        _ = stop_rx.wait_for(|s| *s) => return,
                    }
                }
            });
            resolver_task = Some((stop, task));
        }
        Ok(LoadBalancingExporter {
            inner,
            resolver: resolver_task,
        })
    }
}

impl Drop for LoadBalancingExporter {
    fn drop(&mut self) {
        if let Some((stop, task)) = self.resolver.take() {
            let _ = stop.send(true);
            task.abort();
        }
    }
}

impl Inner {
    /// Replaces the backend list: new ones get an exporter, gone ones leave the ring (a batch
    /// being sent to one finishes or is re-routed).
    fn set_backends(&self, endpoints: Vec<String>) -> Result<(), BuildError> {
        let mut backends = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        backends.retain(|k, _| endpoints.contains(k));
        for e in endpoints {
            if backends.contains_key(&e) {
                continue;
            }
            let mut cfg = self.cfg.protocol.otlp.clone();
            cfg.endpoint = e.clone();
            let exporter = Arc::new(OtlpGrpcExporter::new(&cfg, self.auth.clone())?);
            let outcome = |success: &str| {
                self.registry.counter(
                    "otelcol_loadbalancer_backend_outcome",
                    "Exports to a backend, by outcome.",
                    &[
                        ("exporter", &self.id),
                        ("endpoint", &e),
                        ("success", success),
                    ],
                )
            };
            backends.insert(
                e.clone(),
                Backend {
                    exporter,
                    ejected_until: None,
                    failures: 0,
                    ok: outcome("true"),
                    failed: outcome("false"),
                },
            );
            tracing::info!(exporter = %self.id, endpoint = %e, "loadbalancing: backend added");
        }
        self.metrics.backends.set(backends.len() as i64);
        Ok(())
    }

    async fn resolve_dns(&self, d: &DnsResolver) {
        let lookup = tokio::net::lookup_host((d.hostname.as_str(), d.port));
        match tokio::time::timeout(d.timeout.get(), lookup).await {
            Ok(Ok(addrs)) => {
                let mut endpoints: Vec<String> = addrs.map(|a| a.to_string()).collect();
                endpoints.sort();
                endpoints.dedup();
                self.metrics.resolutions_ok.inc();
                if let Err(e) = self.set_backends(endpoints) {
                    tracing::warn!(exporter = %self.id, error = %e, "loadbalancing: a backend could not be set up");
                }
            }
            Ok(Err(e)) => {
                self.metrics.resolutions_failed.inc();
                tracing::warn!(exporter = %self.id, hostname = %d.hostname, error = %e, "loadbalancing: dns resolution failed; keeping the backends known");
            }
            Err(_) => {
                self.metrics.resolutions_failed.inc();
                tracing::warn!(exporter = %self.id, hostname = %d.hostname, "loadbalancing: dns resolution timed out; keeping the backends known");
            }
        }
    }

    async fn resolve_k8s(&self, api: &k8s::Api, k: &k8s::K8sResolver) {
        match api.backends(k).await {
            Ok(endpoints) => {
                self.metrics.resolutions_ok.inc();
                if let Err(e) = self.set_backends(endpoints) {
                    tracing::warn!(exporter = %self.id, error = %e, "loadbalancing: a backend could not be set up");
                }
            }
            Err(e) => {
                self.metrics.resolutions_failed.inc();
                tracing::warn!(exporter = %self.id, service = %k.service, error = %e, "loadbalancing: listing the service's endpoints failed; keeping the backends known");
            }
        }
    }

    /// The ring of the backends in service now (ejected ones whose back-off passed return),
    /// with their exporters in ring order.
    fn ring(&self) -> (Arc<Ring>, Vec<Arc<OtlpGrpcExporter>>) {
        let mut backends = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for (e, b) in backends.iter_mut() {
            if b.ejected_until.is_some_and(|t| t <= now) {
                b.ejected_until = None;
                b.failures = 0;
                tracing::info!(exporter = %self.id, endpoint = %e, "loadbalancing: backend re-admitted");
            }
        }
        let live: Vec<String> = backends
            .iter()
            .filter(|(_, b)| b.ejected_until.is_none())
            .map(|(e, _)| e.clone())
            .collect();
        self.metrics.backends.set(live.len() as i64);
        let ring = {
            let mut cached = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            match cached.as_ref() {
                Some(r) if r.backends == live => r.clone(),
                _ => {
                    let r = Arc::new(Ring::new(live));
                    *cached = Some(r.clone());
                    r
                }
            }
        };
        let exporters = ring
            .backends
            .iter()
            .filter_map(|e| backends.get(e).map(|b| b.exporter.clone()))
            .collect();
        (ring, exporters)
    }

    /// Records an attempt's outcome (`ok`; `strike`: a failure that counts toward ejection);
    /// true when the backend is (now) ejected.
    fn record(&self, endpoint: &str, ok: bool, strike: bool) -> bool {
        let mut backends = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = backends.get_mut(endpoint) else {
            // it left the ring meanwhile: re-route
            return true;
        };
        if ok {
            b.ok.inc();
            b.failures = 0;
            return false;
        }
        b.failed.inc();
        if !strike {
            return b.ejected_until.is_some();
        }
        b.failures += 1;
        if b.failures >= EJECT_AFTER && b.ejected_until.is_none() {
            b.ejected_until = Some(Instant::now() + EJECT_FOR);
            self.metrics.ejections.inc();
            tracing::warn!(exporter = %self.id, endpoint, "loadbalancing: backend ejected; its share goes to the others");
            return true;
        }
        b.ejected_until.is_some()
    }

    /// Sends one part to its backend, retrying it alone until it is accepted, rejected for
    /// good, the batch's budget is spent (dropped, counted), or the backend is ejected (then
    /// the part comes back to be re-routed).
    async fn send_part(
        &self,
        endpoint: &str,
        exporter: &OtlpGrpcExporter,
        part: Payload,
        meta: &Arc<crate::data::RequestMeta>,
        deadline: Option<Instant>,
    ) -> Part {
        let batch = part.into_outgoing(meta.clone());
        let mut backoff = Backoff::new(&self.cfg.protocol.otlp.retry_on_failure);
        loop {
            let err = match exporter.export(&batch).await {
                Ok(outcome) => {
                    self.record(endpoint, true, false);
                    return Part::Done(outcome.rejected.min(batch.items()));
                }
                Err(e) => e,
            };
            if !err.is_retryable() {
                // the backend answered: not a health problem, but not a success either
                self.record(endpoint, false, false);
                tracing::warn!(exporter = %self.id, endpoint, error = %err, items = batch.items(), "loadbalancing: backend rejected a part permanently");
                return Part::Done(batch.items());
            }
            // a throttling hint is the backend asking to wait, not a failing backend
            let hint = match &err {
                ExportError::Retryable { retry_after, .. } => *retry_after,
                ExportError::Permanent { .. } => None,
            };
            if self.record(endpoint, false, hint.is_none()) {
                // the attempt encoded it (or it came encoded): re-routed as those bytes
                return Part::Reroute(Payload::Encoded(Encoded {
                    signal: batch.signal(),
                    items: batch.items(),
                    bytes: batch.encoded().clone(),
                }));
            }
            let past = |d: StdDuration| deadline.is_some_and(|t| Instant::now() + d >= t);
            match backoff.next_delay(hint) {
                Some(d) if !past(d) => tokio::time::sleep(d).await,
                // the budget is spent on a backend still in the ring: dropped, counted
                _ => {
                    tracing::error!(exporter = %self.id, endpoint, error = %err, items = batch.items(), "loadbalancing: retries exhausted; part dropped");
                    return Part::Done(batch.items());
                }
            }
        }
    }

    async fn export(&self, batch: &Outgoing) -> Result<ExportOutcome, ExportError> {
        let retry = &self.cfg.protocol.otlp.retry_on_failure;
        let max = retry.max_elapsed_time.get();
        // one budget for the whole batch, however often its parts are re-routed (0: none)
        let deadline = (retry.enabled && !max.is_zero()).then(|| Instant::now() + max);
        // a batch that came as protobuf stays protobuf where the routing key allows it
        let mut pending = vec![match batch.encoded_if_known() {
            Some(bytes) => Payload::Encoded(Encoded {
                signal: batch.signal(),
                items: batch.items(),
                bytes: bytes.clone(),
            }),
            None => Payload::Decoded(batch.data().clone()),
        }];
        let mut rejected = 0u64;
        let mut wait = StdDuration::from_millis(100);
        while !pending.is_empty() {
            if deadline.is_some_and(|t| Instant::now() >= t) {
                let lost: u64 = pending.iter().map(Payload::item_count).sum();
                tracing::error!(exporter = %self.id, items = lost, "loadbalancing: not delivered within max_elapsed_time; dropped");
                rejected += lost;
                break;
            }
            let (ring, exporters) = self.ring();
            if ring.is_empty() {
                // every backend is out: hold the batch (backpressure) until one is back
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(StdDuration::from_secs(2));
                continue;
            }
            let mut parts: Vec<(usize, Payload)> = Vec::new();
            for data in pending.drain(..) {
                let key = self.cfg.routing_key.unwrap_or(match data.signal() {
                    crate::component::Signal::Traces => RoutingKey::TraceId,
                    _ => RoutingKey::Service,
                });
                let data = match data {
                    Payload::Encoded(e)
                        if key == RoutingKey::TraceId
                            && e.signal == crate::component::Signal::Traces =>
                    {
                        match split::split_encoded_traces(&e, &ring) {
                            Some(p) => {
                                parts.extend(p.into_iter().map(|(b, e)| (b, Payload::Encoded(e))));
                                continue;
                            }
                            None => Payload::Encoded(e),
                        }
                    }
                    other => other,
                };
                parts.extend(
                    split::split(
                        data.into_decoded(),
                        key,
                        &self.cfg.routing_attributes,
                        &ring,
                    )
                    .into_iter()
                    .map(|(b, t)| (b, Payload::Decoded(t))),
                );
            }
            let mut sends = Vec::with_capacity(parts.len());
            for (b, part) in parts {
                match (ring.backends.get(b), exporters.get(b)) {
                    (Some(endpoint), Some(exporter)) => sends.push(async move {
                        self.send_part(endpoint, exporter, part, &batch.meta, deadline)
                            .await
                    }),
                    // the ring and its exporters come from one lock: cannot happen; counted
                    _ => rejected += part.item_count(),
                }
            }
            for done in futures_util::future::join_all(sends).await {
                match done {
                    Part::Done(n) => rejected += n,
                    Part::Reroute(data) => {
                        self.metrics.rerouted.add(data.item_count());
                        pending.push(data);
                    }
                }
            }
        }
        Ok(ExportOutcome {
            rejected,
            message: if rejected > 0 {
                "loadbalancing: some items were rejected by their backend".into()
            } else {
                String::new()
            },
        })
    }
}

/// How a part ended.
enum Part {
    /// Sent; this many items rejected.
    Done(u64),
    /// Its backend was ejected: split it again over the ring.
    Reroute(Payload),
}

impl Exporter for LoadBalancingExporter {
    /// Never decodes for itself: `traceID` routing runs on the protobuf
    /// ([`split::split_encoded_traces`]); other keys decode the batch in the export.
    fn reads_items(&self) -> bool {
        false
    }

    fn export<'a>(
        &'a self,
        batch: &'a Outgoing,
    ) -> BoxFuture<'a, Result<ExportOutcome, ExportError>> {
        Box::pin(self.inner.export(batch))
    }
}

#[cfg(test)]
mod tests;
