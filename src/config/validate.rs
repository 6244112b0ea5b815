//! Cross-component validation, after every component config was typed on its own: references
//! (each id a pipeline names is defined and supports the pipeline's signal, listed once),
//! pipelines with receivers and exporters, `service.extensions`, persistent-queue storage,
//! listener clashes (one port on overlapping addresses), and unused components (warnings).
//! Every problem is collected into [`Diagnostics`] with its path.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::{Config, PipelineSpec};
use crate::component::{ComponentId, Diagnostics, PipelineId};
use crate::data::Signal;
use crate::extensions::ExtensionConfig;
use crate::net::{check_endpoint, literal_addr};

/// Cross-component validation: references, signals, listeners, and each component's own rules.
pub(super) fn validate(cfg: &mut Config, broken: &BTreeSet<String>, diag: &mut Diagnostics) {
    for (id, r) in &cfg.receivers {
        r.validate(&format!("receivers.{id}"), diag);
    }
    for (id, p) in &cfg.processors {
        p.validate(&format!("processors.{id}"), diag);
    }
    for (id, e) in &cfg.exporters {
        e.validate(&format!("exporters.{id}"), diag);
    }
    for (id, e) in &cfg.extensions {
        e.validate(&format!("extensions.{id}"), diag);
    }
    for (id, c) in &cfg.connectors {
        c.validate(&format!("connectors.{id}"), diag);
    }

    let mut used = BTreeSet::new();
    let unparsed_pipelines = broken.iter().any(|b| b.starts_with("service.pipelines."));
    if cfg.service.pipelines.is_empty() && !unparsed_pipelines {
        diag.error("service.pipelines", "at least one pipeline is required");
    }
    for (pid, p) in &cfg.service.pipelines {
        let path = format!("service.pipelines.{pid}");
        let (sig, name) = match pid.split_once('/') {
            Some((s, n)) => (s, Some(n.to_string())),
            None => (pid.as_str(), None),
        };
        let Some(signal) = Signal::parse(sig) else {
            diag.error(
                path,
                format!("unknown signal {sig:?} in pipeline id (expected traces, metrics or logs)"),
            );
            continue;
        };
        if p.receivers.is_empty() {
            diag.error(
                format!("{path}.receivers"),
                "a pipeline needs at least one receiver",
            );
        }
        if p.exporters.is_empty() {
            diag.error(
                format!("{path}.exporters"),
                "a pipeline needs at least one exporter",
            );
        }
        let mut refs = Refs {
            diag,
            used: &mut used,
            broken,
            signal,
        };
        // a connector id may stand where a receiver or an exporter does (its signal pairs
        // are checked once every pipeline is known, in `check_connectors`)
        let connector = |id: &ComponentId| {
            cfg.connectors
                .contains_key(id)
                .then(|| Signal::ALL.to_vec())
        };
        let receivers = refs.check(
            &p.receivers,
            &format!("{path}.receivers"),
            "receiver",
            |id| {
                cfg.receivers
                    .get(id)
                    .map(|r| supported(|s| r.supports(s)))
                    .or_else(|| connector(id))
            },
        );
        let processors = refs.check(
            &p.processors,
            &format!("{path}.processors"),
            "processor",
            |id| cfg.processors.get(id).map(|r| supported(|s| r.supports(s))),
        );
        let exporters = refs.check(
            &p.exporters,
            &format!("{path}.exporters"),
            "exporter",
            |id| {
                cfg.exporters
                    .get(id)
                    .map(|r| supported(|s| r.supports(s)))
                    .or_else(|| connector(id))
            },
        );
        cfg.pipelines.push((
            PipelineId { signal, name },
            PipelineSpec {
                receivers,
                processors,
                exporters,
            },
        ));
    }
    for (i, ext) in cfg.service.extensions.iter().enumerate() {
        let path = format!("service.extensions[{i}]");
        match ComponentId::parse(ext) {
            Ok(id) if cfg.extensions.contains_key(&id) => {
                used.insert(("extension", id));
            }
            Ok(_) => diag.error(
                path,
                format!("extension {ext:?} is not defined under extensions"),
            ),
            Err(e) => diag.error(path, e),
        }
    }
    check_connectors(cfg, &mut used, diag);
    check_storage(cfg, &mut used, diag);
    check_authenticators(cfg, &mut used, diag);
    for (kind, ids) in [
        ("receiver", cfg.receivers.keys().collect::<Vec<_>>()),
        ("processor", cfg.processors.keys().collect()),
        ("exporter", cfg.exporters.keys().collect()),
        ("extension", cfg.extensions.keys().collect()),
        ("connector", cfg.connectors.keys().collect()),
    ] {
        for id in ids {
            if !used.contains(&(kind, id.clone())) {
                let why = match kind {
                    "extension" => "is defined but not enabled in service.extensions",
                    _ => "is defined but not used by any pipeline",
                };
                diag.warn(
                    format!("{kind}s.{id}"),
                    format!("{kind} {why}; it will not start"),
                );
            }
        }
    }
    check_listeners(cfg, &used, diag);
}

/// Each connector is used on both sides (some pipeline exports to it, some receives from it),
/// with signal pairs it supports; connectors form no cycle between pipelines.
fn check_connectors(
    cfg: &Config,
    used: &mut BTreeSet<(&'static str, ComponentId)>,
    diag: &mut Diagnostics,
) {
    for (cid, c) in &cfg.connectors {
        let side = |exporting: bool| -> Vec<&PipelineId> {
            cfg.pipelines
                .iter()
                .filter(|(_, p)| {
                    if exporting {
                        p.exporters.contains(cid)
                    } else {
                        p.receivers.contains(cid)
                    }
                })
                .map(|(pid, _)| pid)
                .collect()
        };
        let (into, out_of) = (side(true), side(false));
        let path = format!("connectors.{cid}");
        let names = |v: &[&PipelineId]| {
            v.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (into.is_empty(), out_of.is_empty()) {
            (true, true) => continue,
            (false, true) => diag.error(
                &path,
                format!(
                    "connector {cid} is an exporter of {} but no pipeline lists it under receivers",
                    names(&into)
                ),
            ),
            (true, false) => diag.error(
                &path,
                format!(
                    "connector {cid} is a receiver of {} but no pipeline lists it under exporters",
                    names(&out_of)
                ),
            ),
            (false, false) => {
                used.insert(("connector", cid.clone()));
            }
        }
        // a routing connector's routes name pipelines that receive from it
        if let crate::connectors::ConnectorConfig::Routing(r) = c {
            for name in r.pipelines() {
                if !out_of.iter().any(|p| p.to_string() == name) {
                    diag.error(
                        &path,
                        format!("route pipeline {name:?} does not list {cid} under receivers"),
                    );
                }
            }
        }
        for a in &into {
            for b in &out_of {
                if !c.supports(a.signal, b.signal) {
                    diag.error(
                        &path,
                        format!(
                            "connector {cid} cannot connect {} ({}) to {} ({}): {} connects {}",
                            a,
                            a.signal,
                            b,
                            b.signal,
                            cid.kind,
                            c.pairs()
                        ),
                    );
                }
            }
        }
    }
    if let Some(cycle) = connector_cycle(cfg) {
        diag.error(
            "service.pipelines",
            format!(
                "connectors form a cycle: {}",
                cycle
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        );
    }
}

/// The pipelines a pipeline feeds through its connectors.
pub fn downstream(cfg: &Config, from: &PipelineSpec) -> Vec<usize> {
    let cons: Vec<&ComponentId> = from
        .exporters
        .iter()
        .filter(|e| cfg.connectors.contains_key(e))
        .collect();
    cfg.pipelines
        .iter()
        .enumerate()
        .filter(|(_, (_, p))| p.receivers.iter().any(|r| cons.contains(&r)))
        .map(|(i, _)| i)
        .collect()
}

/// A cycle of pipelines through connectors (the pipelines in order, the first repeated last).
fn connector_cycle(cfg: &Config) -> Option<Vec<PipelineId>> {
    // 0 unvisited, 1 on the current path, 2 done
    fn visit(
        cfg: &Config,
        i: usize,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        path.push(i);
        for j in downstream(cfg, &cfg.pipelines[i].1) {
            match state[j] {
                1 => {
                    let start = path.iter().position(|&k| k == j).unwrap_or(0);
                    let mut c = path[start..].to_vec();
                    c.push(j);
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(cfg, j, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; cfg.pipelines.len()];
    for i in 0..cfg.pipelines.len() {
        if state[i] == 0 {
            if let Some(c) = visit(cfg, i, &mut state, &mut Vec::new()) {
                return Some(c.into_iter().map(|k| cfg.pipelines[k].0.clone()).collect());
            }
        }
    }
    None
}

/// `sending_queue.storage` (exporters) and `storage` (receivers) must name a `file_storage`
/// extension that `service.extensions` starts (the Collector's rule).
fn check_storage(
    cfg: &Config,
    used: &mut BTreeSet<(&'static str, ComponentId)>,
    diag: &mut Diagnostics,
) {
    let refs = cfg
        .exporters
        .iter()
        .filter_map(|(id, e)| {
            let s = e.queue().and_then(|q| q.storage.as_deref())?;
            Some((format!("exporters.{id}.sending_queue.storage"), s))
        })
        .chain(cfg.receivers.iter().filter_map(|(id, r)| {
            let (key, s) = r.storage()?;
            Some((format!("receivers.{id}.{key}"), s))
        }));
    for (path, storage) in refs {
        let sid = match ComponentId::parse(storage) {
            Ok(sid) => sid,
            Err(err) => {
                diag.error(path, err);
                continue;
            }
        };
        match cfg.extensions.get(&sid) {
            None => diag.error(
                path,
                format!("extension {storage:?} is not defined under extensions"),
            ),
            Some(ExtensionConfig::FileStorage(_)) => {
                if !cfg
                    .service
                    .extensions
                    .iter()
                    .any(|x| ComponentId::parse(x).is_ok_and(|x| x == sid))
                {
                    diag.error(
                        path,
                        format!("extension {storage:?} must also be listed in service.extensions"),
                    );
                }
                used.insert(("extension", sid));
            }
            Some(_) => diag.error(
                path,
                format!("extension {storage:?} is not a file_storage extension"),
            ),
        }
    }
}

/// `auth.authenticator` (on a server or an exporter) must name a `bearertokenauth` or
/// `basicauth` extension that `service.extensions` starts (the Collector finds authenticators
/// among started extensions); an exporter's `basicauth` needs `client_auth`.
fn check_authenticators(
    cfg: &Config,
    used: &mut BTreeSet<(&'static str, ComponentId)>,
    diag: &mut Diagnostics,
) {
    let refs = cfg
        .receivers
        .iter()
        .flat_map(|(id, r)| {
            r.authenticators()
                .into_iter()
                .map(move |(key, name)| (format!("receivers.{id}.{key}"), name, false))
        })
        .chain(cfg.exporters.iter().filter_map(|(id, e)| {
            e.authenticator()
                .map(|(key, name)| (format!("exporters.{id}.{key}"), name, true))
        }));
    for (path, name, client) in refs {
        {
            let aid = match ComponentId::parse(name) {
                Ok(a) => a,
                Err(err) => {
                    diag.error(path, err);
                    continue;
                }
            };
            match cfg.extensions.get(&aid) {
                None => diag.error(
                    path,
                    format!("extension {name:?} is not defined under extensions"),
                ),
                Some(ExtensionConfig::HeadersSetter(_)) if !client => {
                    diag.error(
                        path,
                        format!("extension {name:?} sets headers on exporters; it cannot check requests"),
                    );
                }
                Some(ExtensionConfig::BasicAuth(b)) if !client && b.htpasswd.is_none() => {
                    diag.error(path, format!("extension {name:?} has no htpasswd to check"));
                }
                Some(ExtensionConfig::BasicAuth(b)) if client && b.client_auth.is_none() => {
                    diag.error(
                        path,
                        format!("extension {name:?} has no client_auth to send"),
                    );
                }
                Some(
                    ExtensionConfig::BearerTokenAuth(_)
                    | ExtensionConfig::BasicAuth(_)
                    | ExtensionConfig::HeadersSetter(_),
                ) => {
                    if !cfg
                        .service
                        .extensions
                        .iter()
                        .any(|x| ComponentId::parse(x).is_ok_and(|x| x == aid))
                    {
                        diag.error(
                            path,
                            format!("extension {name:?} must also be listed in service.extensions"),
                        );
                    }
                    used.insert(("extension", aid));
                }
                Some(_) => diag.error(
                    path,
                    format!(
                        "extension {name:?} is not an authenticator (bearertokenauth, basicauth or headers_setter)"
                    ),
                ),
            }
        }
    }
}

/// The signals a component supports, in the usual order.
fn supported(supports: impl Fn(Signal) -> bool) -> Vec<Signal> {
    Signal::ALL.into_iter().filter(|s| supports(*s)).collect()
}

/// `traces`, `traces and logs`, `traces, metrics and logs`.
fn signal_list(signals: &[Signal]) -> String {
    match signals {
        [] => "no signal".into(),
        [one] => one.to_string(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(|s| s.as_str()).collect();
            format!("{} and {last}", rest.join(", "))
        }
    }
}

/// Checks one list of component references in a pipeline.
struct Refs<'a> {
    diag: &'a mut Diagnostics,
    used: &'a mut BTreeSet<(&'static str, ComponentId)>,
    broken: &'a BTreeSet<String>,
    signal: Signal,
}

impl Refs<'_> {
    fn check(
        &mut self,
        refs: &[String],
        path: &str,
        kind: &'static str,
        lookup: impl Fn(&ComponentId) -> Option<Vec<Signal>>,
    ) -> Vec<ComponentId> {
        let mut seen = BTreeSet::new();
        let mut ids = Vec::with_capacity(refs.len());
        for (i, r) in refs.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let id = match ComponentId::parse(r) {
                Ok(id) => id,
                Err(e) => {
                    self.diag.error(p, e);
                    continue;
                }
            };
            if !seen.insert(id.clone()) {
                self.diag
                    .error(p.clone(), format!("{kind} {r:?} is listed twice"));
            }
            match lookup(&id) {
                None if self.broken.contains(r) => {}
                None => self
                    .diag
                    .error(p, format!("{kind} {r:?} is not defined under {kind}s")),
                Some(signals) if !signals.contains(&self.signal) => self.diag.error(
                    p,
                    format!(
                        "{kind} {r:?} does not support {}: {} supports {}",
                        self.signal,
                        id.kind,
                        signal_list(&signals)
                    ),
                ),
                Some(_) => {
                    self.used.insert((kind, id.clone()));
                    ids.push(id);
                }
            }
        }
        ids
    }
}

fn check_listeners(
    cfg: &Config,
    used: &BTreeSet<(&'static str, ComponentId)>,
    diag: &mut Diagnostics,
) {
    // Endpoints are checked for form by their components; here only those whose address is
    // known without resolving a name (validation never resolves) are compared.
    let mut listeners: Vec<(String, SocketAddr)> = Vec::new();
    let mut add = |path: String, endpoint: &str, _: &mut Diagnostics| {
        if let Some(a) = literal_addr(endpoint) {
            listeners.push((path, a));
        }
    };
    for (id, r) in &cfg.receivers {
        if used.contains(&("receiver", id.clone())) {
            for (suffix, ep) in r.listeners() {
                add(format!("receivers.{id}.{suffix}"), ep, diag);
            }
        }
    }
    for (id, e) in &cfg.exporters {
        if used.contains(&("exporter", id.clone())) {
            for (suffix, ep) in e.listeners() {
                add(format!("exporters.{id}.{suffix}"), ep, diag);
            }
        }
    }
    for (id, e) in &cfg.extensions {
        if used.contains(&("extension", id.clone())) {
            for (suffix, ep) in e.listeners() {
                add(format!("extensions.{id}.{suffix}"), ep, diag);
            }
        }
    }
    if cfg.service.telemetry.metrics.level != "none" {
        if let Err(e) = check_endpoint(&cfg.service.telemetry.metrics.address) {
            diag.error("service.telemetry.metrics.address", e);
        }
        add(
            "service.telemetry.metrics.address".into(),
            &cfg.service.telemetry.metrics.address,
            diag,
        );
    }
    for i in 0..listeners.len() {
        for j in i + 1..listeners.len() {
            let (pa, a) = &listeners[i];
            let (pb, b) = &listeners[j];
            // an unspecified address overlaps its own family; `::` (dual-stack) overlaps both
            let covers = |u: &SocketAddr, o: &SocketAddr| {
                u.ip().is_unspecified() && (u.is_ipv6() || o.is_ipv4())
            };
            let overlap = a.ip() == b.ip() || covers(a, b) || covers(b, a);
            if a.port() != 0 && a.port() == b.port() && overlap {
                diag.error(
                    pb.clone(),
                    format!("listens on {b}, which {pa} already uses ({a})"),
                );
            }
        }
    }
}
