//! `container`: docker JSON, CRI-O and containerd log lines, with partial lines joined per file
//! and k8s metadata taken from the pod log path.

use super::field::{Field, Root};
use super::parsers::{parse_embedded, Embedded};
use super::time::{self, Location, Tok};
use super::{Cfg, Entry, COMMON};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;

const CRIO: &str = r"^(?P<time>[^ Z]+) (?P<stream>stdout|stderr) (?P<logtag>[^ ]*) ?(?P<log>.*)$";
const CONTAINERD: &str =
    r"^(?P<time>[^ ^Z]+Z) (?P<stream>stdout|stderr) (?P<logtag>[^ ]*) ?(?P<log>.*)$";
const LOG_PATH: &str = r"^.*(/|\\)(?P<namespace>[^_]+)_(?P<pod_name>[^_]+)_(?P<uid>[a-f0-9\-]+)(/|\\)(?P<container_name>[^\._]+)(/|\\)(?P<restart_count>\d+)\.log$";
const PATH_ATTR: &str = "log.file.path";
/// Held partial lines are emitted after this long without their final part.
const PARTIAL_FLUSH_NS: u64 = 5_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Docker,
    Crio,
    Containerd,
}

#[derive(Debug, Clone)]
pub struct ContainerCfg {
    /// `format`: docker, crio or containerd; detected per line when absent.
    pub format: Option<Format>,
    /// `add_metadata_from_filepath` (default true): k8s resource attributes from `log.file.path`.
    pub add_metadata: bool,
    /// `max_log_size` (default 1MiB, 0 = none): a joined partial line is emitted at this size.
    pub max_log_size: u64,
    /// `parse_from` (default `body`).
    pub parse_from: Field,
    /// `parse_to` (default `attributes`): where extra parsed keys (e.g. `logtag`) go.
    pub parse_to: Field,
    /// The embedded `severity:` block.
    pub embedded: Embedded,
}

pub fn parse(c: &mut Cfg) -> Option<ContainerCfg> {
    c.allow(&[
        COMMON,
        &[
            "format",
            "add_metadata_from_filepath",
            "max_log_size",
            "parse_from",
            "parse_to",
            "severity",
        ],
    ]);
    let format = match c.str("format").as_deref() {
        None | Some("") => None,
        Some("docker") => Some(Format::Docker),
        Some("crio") => Some(Format::Crio),
        Some("containerd") => Some(Format::Containerd),
        Some(o) => {
            c.err(
                "format",
                format!("unknown format {o:?} (docker, crio, containerd)"),
            );
            None
        }
    };
    Some(ContainerCfg {
        format,
        add_metadata: c.bool("add_metadata_from_filepath", true),
        max_log_size: c.bytes("max_log_size", 1 << 20),
        parse_from: c.field_or("parse_from", Field::body()),
        parse_to: c.field_or(
            "parse_to",
            Field {
                root: Root::Attributes,
                path: vec![],
            },
        ),
        embedded: parse_embedded(c),
    })
}

/// A partial line waiting for its end.
struct Pending {
    entry: Entry,
    text: String,
    started_ns: u64,
    seq: u64,
}

pub struct Container {
    cfg: ContainerCfg,
    crio: Option<Regex>,
    containerd: Option<Regex>,
    path: Option<Regex>,
    layout: Vec<Tok>,
    pending: HashMap<String, Pending>,
    seq: u64,
    /// The k8s attributes of the last path seen (a file's lines arrive together).
    last_path: Option<(String, Vec<(&'static str, Value)>)>,
}

impl Container {
    pub fn new(cfg: ContainerCfg) -> Self {
        Container {
            cfg,
            crio: Regex::new(CRIO).ok(),
            containerd: Regex::new(CONTAINERD).ok(),
            path: Regex::new(LOG_PATH).ok(),
            layout: time::gotime("2006-01-02T15:04:05.999999999Z07:00").unwrap_or_default(),
            pending: HashMap::new(),
            seq: 0,
            last_path: None,
        }
    }

    fn detect(&self, raw: &str) -> Option<Format> {
        let hit = |r: &Option<Regex>| r.as_ref().is_some_and(|r| r.is_match(raw));
        if raw.starts_with('{') {
            Some(Format::Docker)
        } else if hit(&self.crio) {
            Some(Format::Crio)
        } else if hit(&self.containerd) {
            Some(Format::Containerd)
        } else {
            None
        }
    }

    /// Parses one line. `Err(Some(e))`: the line could not be parsed (e is unchanged);
    /// `Err(None)`: parsed, but metadata or severity failed (the entry continues).
    pub fn process(
        &mut self,
        mut e: Entry,
        now_ns: u64,
        out: &mut Vec<Entry>,
    ) -> Result<(), Option<Box<Entry>>> {
        let Some(raw) = self.cfg.parse_from.get_str(&e) else {
            return Err(Some(Box::new(e)));
        };
        let Some(format) = self.cfg.format.or_else(|| self.detect(raw)) else {
            return Err(Some(Box::new(e)));
        };
        let mut fields: Map<String, Value> = match format {
            Format::Docker => match serde_json::from_str(raw) {
                Ok(Value::Object(m)) => m,
                _ => return Err(Some(Box::new(e))),
            },
            _ => {
                let re = if format == Format::Crio {
                    &self.crio
                } else {
                    &self.containerd
                };
                let Some(caps) = re.as_ref().and_then(|r| r.captures(raw)) else {
                    return Err(Some(Box::new(e)));
                };
                ["time", "stream", "logtag", "log"]
                    .iter()
                    .filter_map(|k| {
                        Some((k.to_string(), Value::String(caps.name(k)?.as_str().into())))
                    })
                    .collect()
            }
        };
        let ts = match fields.remove("time") {
            Some(Value::String(t)) => match time::parse(&self.layout, &t, Location::Utc, now_ns) {
                Ok(ts) => ts,
                Err(_) => return Err(Some(Box::new(e))),
            },
            _ => return Err(Some(Box::new(e))),
        };
        let Some(Value::String(mut log)) = fields.remove("log") else {
            return Err(Some(Box::new(e)));
        };
        let stream = fields.remove("stream");
        let partial = match format {
            // docker: every line is an entry (the Collector joins only CRI `P` partials)
            Format::Docker => {
                if let Some(l) = log.strip_suffix('\n') {
                    log = l.to_string();
                }
                false
            }
            _ => fields.get("logtag") == Some(&Value::String("P".into())),
        };
        // Parsed: now change the entry.
        let mut failed = false;
        if !fields.is_empty() {
            failed |= self
                .cfg
                .parse_to
                .set(&mut e, Value::Object(fields))
                .is_err();
        }
        if let Some(s) = stream {
            e.attributes.insert("log.iostream".into(), s);
        }
        e.timestamp = Some(ts);
        if self.cfg.add_metadata {
            failed |= !self.add_metadata(&mut e);
        }
        failed |= self.cfg.embedded.apply(&mut e, now_ns).is_err();

        let source = e
            .attributes
            .get(PATH_ATTR)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let joined = match self.pending.remove(&source) {
            Some(mut p) => {
                p.text.push_str(&log);
                p.entry = e;
                p
            }
            None => {
                self.seq += 1;
                Pending {
                    entry: e,
                    text: log,
                    started_ns: now_ns,
                    seq: self.seq,
                }
            }
        };
        let too_big =
            self.cfg.max_log_size > 0 && joined.text.len() as u64 >= self.cfg.max_log_size;
        if partial && !too_big {
            self.pending.insert(source, joined);
        } else {
            out.push(finish(joined));
        }
        if failed {
            Err(None)
        } else {
            Ok(())
        }
    }

    /// Sets the k8s resource attributes from the pod log path; false if it cannot.
    fn add_metadata(&mut self, e: &mut Entry) -> bool {
        let Some(path) = e.attributes.get(PATH_ATTR).and_then(Value::as_str) else {
            return false;
        };
        if let Some((last, attrs)) = &self.last_path {
            if last == path {
                for (k, v) in attrs {
                    e.resource.insert((*k).into(), v.clone());
                }
                return true;
            }
        }
        let Some(caps) = self.path.as_ref().and_then(|r| r.captures(path)) else {
            return false;
        };
        let mut attrs = Vec::with_capacity(5);
        for (group, key) in [
            ("namespace", "k8s.namespace.name"),
            ("pod_name", "k8s.pod.name"),
            ("uid", "k8s.pod.uid"),
            ("container_name", "k8s.container.name"),
            ("restart_count", "k8s.container.restart_count"),
        ] {
            if let Some(m) = caps.name(group) {
                attrs.push((key, Value::String(m.as_str().into())));
            }
        }
        for (k, v) in &attrs {
            e.resource.insert((*k).into(), v.clone());
        }
        self.last_path = Some((path.to_string(), attrs));
        true
    }

    /// Emits partial lines held longer than the flush period, or all of them.
    pub fn flush(&mut self, now_ns: u64, all: bool, out: &mut Vec<Entry>) {
        let mut due: Vec<(u64, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| all || now_ns.saturating_sub(p.started_ns) >= PARTIAL_FLUSH_NS)
            .map(|(k, p)| (p.seq, k.clone()))
            .collect();
        due.sort();
        for (_, k) in due {
            if let Some(p) = self.pending.remove(&k) {
                out.push(finish(p));
            }
        }
    }
}

fn finish(p: Pending) -> Entry {
    let mut e = p.entry;
    e.body = Value::String(p.text);
    e
}
