//! Stanza operators: the `operators:` list of the Collector's `filelog` receiver.
//!
//! Contract:
//! - [`OperatorsConfig::parse`] validates the YAML list without I/O and reports *every* problem
//!   (unknown type or key, bad regex/expression/field, duplicate id, dangling `output`, cycle,
//!   unsupported feature) to `Diagnostics` with a path like `…operators[2].regex`.
//! - [`OperatorsConfig::build`] turns a valid config into [`Operators`], a graph where each
//!   operator sends to its `output` (default: the next operator in the list, or the end).
//! - [`Operators::process`] runs one [`Entry`] through the graph and appends whatever reaches the
//!   end to `out`. Operators never panic. A failing operator applies its `on_error`: `send` /
//!   `send_quiet` pass the entry on as it is (parsers fail before changing it), `drop` /
//!   `drop_quiet` drop it; every failure counts in [`Operators::errors`], every drop (including
//!   a router with no matching route and no default) in [`Operators::dropped`].
//! - `recombine` and `container` (CRI `P`/`F` lines, docker partial lines) hold entries per
//!   source; [`Operators::flush`] emits held batches older than their flush period (or all).

mod container;
mod expr;
mod field;
mod parsers;
mod recombine;
mod severity;
#[cfg(test)]
mod tests;
mod time;
mod transform;

use crate::component::Diagnostics;
use expr::Expr;
use field::Field;
use serde_norway::{Mapping, Value as Yaml};
use std::collections::{HashMap, VecDeque};

/// One log entry as stanza operators see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub body: serde_json::Value, // a line arrives as Value::String
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub resource: serde_json::Map<String, serde_json::Value>,
    pub timestamp: Option<u64>, // unix nanos; None = not set
    pub severity: i32,          // OTLP SeverityNumber (0 = unspecified)
    pub severity_text: String,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub trace_flags: u32,
}

/// What an operator does with an entry it failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Pass the entry on (and log).
    #[default]
    Send,
    /// Pass the entry on without logging.
    SendQuiet,
    /// Drop the entry (and log).
    Drop,
    /// Drop the entry without logging.
    DropQuiet,
}

/// `operators:` as written in the config (a YAML list); validated without I/O.
#[derive(Debug, Clone, Default)]
pub struct OperatorsConfig {
    /// The operators, in list order.
    ops: Vec<OpConfig>,
    /// The list as written, for `to_value`.
    raw: Option<Yaml>,
}

/// One validated operator.
#[derive(Debug, Clone)]
struct OpConfig {
    /// `id` (default: the type name); unique.
    id: String,
    /// `output`: the id of the operator that receives this one's entries (default: the next).
    output: Option<String>,
    /// `if`: when false the entry skips this operator and goes to its output.
    cond: Option<Expr>,
    /// `on_error` (default `send`).
    on_error: OnError,
    /// The type-specific part.
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Parser(parsers::ParserCfg),
    Time(parsers::TimeCfg),
    Severity(parsers::SeverityCfg),
    Trace(parsers::TraceCfg),
    Transform(transform::Transform),
    Router(Vec<Route>, Option<String>),
    Recombine(recombine::RecombineCfg),
    Container(container::ContainerCfg),
    Noop,
}

/// One `routes:` item of a router.
#[derive(Debug, Clone)]
struct Route {
    /// `expr`: the condition.
    expr: Expr,
    /// `output`: the operator id that receives matching entries.
    output: String,
    /// `attributes`: added to matching entries.
    attributes: serde_json::Map<String, serde_json::Value>,
}

const COMMON: &[&str] = &["type", "id", "output", "if", "on_error"];
const UNSUPPORTED_TYPES: &[&str] = &[
    "csv_parser",
    "syslog_parser",
    "uri_parser",
    "json_array_parser",
    "regex_replace",
    "unquote",
    "assign_keys",
    "scope_name_parser",
    "stdout",
    "file_output",
    "file_input",
    "sanitize",
];

/// Reads one YAML map, reporting problems at `path.key`.
pub(crate) struct Cfg<'a> {
    pub m: &'a Mapping,
    pub path: String,
    pub diag: &'a mut Diagnostics,
}

impl<'a> Cfg<'a> {
    pub fn get(&self, k: &str) -> Option<&'a Yaml> {
        self.m.get(k).filter(|v| !v.is_null())
    }
    pub fn p(&self, k: &str) -> String {
        format!("{}.{k}", self.path)
    }
    pub fn err(&mut self, k: &str, msg: impl Into<String>) {
        let p = self.p(k);
        self.diag.error(p, msg);
    }
    /// Errors for every key not in `allowed`.
    pub fn allow(&mut self, allowed: &[&[&str]]) {
        for k in self.m.keys() {
            let name = k.as_str().unwrap_or("");
            if !allowed.iter().any(|set| set.contains(&name)) {
                let p = format!("{}.{}", self.path, yaml_scalar(k).unwrap_or_default());
                self.diag.error(p, "unknown key");
            }
        }
    }
    pub fn str(&mut self, k: &str) -> Option<String> {
        let v = self.get(k)?;
        let s = yaml_scalar(v);
        if s.is_none() {
            self.err(k, "must be a string");
        }
        s
    }
    pub fn str_or(&mut self, k: &str, default: &str) -> String {
        self.str(k).unwrap_or_else(|| default.to_string())
    }
    pub fn bool(&mut self, k: &str, default: bool) -> bool {
        match self.get(k) {
            None => default,
            Some(Yaml::Bool(b)) => *b,
            Some(_) => {
                self.err(k, "must be true or false");
                default
            }
        }
    }
    pub fn uint(&mut self, k: &str, default: u64) -> u64 {
        match self.get(k) {
            None => default,
            Some(v) => v.as_u64().unwrap_or_else(|| {
                self.err(k, "must be a non-negative integer");
                default
            }),
        }
    }
    /// A byte size: an integer or a string like `1MiB`, `64KB`.
    pub fn bytes(&mut self, k: &str, default: u64) -> u64 {
        let Some(v) = self.get(k) else { return default };
        if let Some(n) = v.as_u64() {
            return n;
        }
        match yaml_scalar(v).and_then(|s| parse_bytes(&s)) {
            Some(n) => n,
            None => {
                self.err(k, "must be a byte size like 1048576 or 1MiB");
                default
            }
        }
    }
    /// A Go duration string like `5s`, `100ms`, `1m30s`, in nanoseconds.
    pub fn duration(&mut self, k: &str, default: u64) -> u64 {
        let Some(v) = self.get(k) else { return default };
        match yaml_scalar(v).and_then(|s| parse_duration(&s)) {
            Some(n) => n,
            None => {
                self.err(k, "must be a duration like 5s or 100ms");
                default
            }
        }
    }
    pub fn field(&mut self, k: &str) -> Option<Field> {
        let s = self.str(k)?;
        Field::parse(&s).map_err(|e| self.err(k, e)).ok()
    }
    pub fn field_or(&mut self, k: &str, default: Field) -> Field {
        if self.get(k).is_none() {
            return default;
        }
        self.field(k).unwrap_or(default)
    }
    pub fn expr(&mut self, k: &str) -> Option<Expr> {
        let s = self.str(k)?;
        Expr::compile(&s)
            .map_err(|e| self.err(k, format!("expression {s:?}: {e}")))
            .ok()
    }
    /// A nested map at `k` as a sub-reader.
    pub fn sub(&mut self, k: &str) -> Option<Cfg<'_>> {
        let v = self.get(k)?;
        let Some(m) = v.as_mapping() else {
            self.err(k, "must be a map");
            return None;
        };
        Some(Cfg {
            m,
            path: self.p(k),
            diag: self.diag,
        })
    }
    /// An operator id (`output`, `default`): a string, or a list holding one id.
    pub fn id_ref(&mut self, k: &str) -> Option<String> {
        match self.get(k)? {
            Yaml::Sequence(s) if s.len() == 1 => s.first().and_then(yaml_scalar),
            Yaml::Sequence(s) if s.is_empty() => None,
            Yaml::Sequence(_) => {
                self.err(
                    k,
                    "fan-out to several operators is not supported; name one id",
                );
                None
            }
            _ => self.str(k),
        }
    }
}

pub(crate) fn yaml_scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// YAML → JSON value (tags dropped; non-string map keys stringified).
pub(crate) fn yaml_to_json(v: &Yaml) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Yaml::Null => J::Null,
        Yaml::Bool(b) => J::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                J::from(i)
            } else if let Some(u) = n.as_u64() {
                J::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(J::Null, J::Number)
            }
        }
        Yaml::String(s) => J::String(s.clone()),
        Yaml::Sequence(s) => J::Array(s.iter().map(yaml_to_json).collect()),
        Yaml::Mapping(m) => J::Object(
            m.iter()
                .map(|(k, v)| (yaml_scalar(k).unwrap_or_default(), yaml_to_json(v)))
                .collect(),
        ),
        Yaml::Tagged(t) => yaml_to_json(&t.value),
    }
}

fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" => 1024.0,
        "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * mult) as u64)
}

fn parse_duration(s: &str) -> Option<u64> {
    let mut rest = s.trim();
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Some(total as u64)
}

impl OperatorsConfig {
    /// Parses the YAML list; every problem (unknown operator type, unknown key, bad regex, bad
    /// expression, duplicate id, an `output` naming no operator, a cycle...) goes to `diag` with its
    /// path, e.g. `receivers.filelog.operators[2].regex`; collect ALL problems, never stop at the first.
    pub fn parse(path: &str, v: &serde_norway::Value, diag: &mut Diagnostics) -> OperatorsConfig {
        let items = match v {
            Yaml::Null => return OperatorsConfig::default(),
            Yaml::Sequence(s) => s,
            _ => {
                diag.error(path, "must be a list of operators");
                return OperatorsConfig::default();
            }
        };
        let mut ops = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        // (index in `ops`, item path) for the reference checks below.
        let mut paths = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            let Some(m) = item.as_mapping() else {
                diag.error(ipath, "must be a map with a `type`");
                continue;
            };
            let mut c = Cfg {
                m,
                path: ipath.clone(),
                diag,
            };
            let Some(ty) = c.str("type") else {
                c.err("type", "required");
                continue;
            };
            let id = c.str("id").unwrap_or_else(|| ty.clone());
            if let Some(first) = seen.get(&id) {
                c.err(
                    "id",
                    format!("duplicate operator id {id:?} (also {path}[{first}])"),
                );
            } else {
                seen.insert(id.clone(), i);
            }
            // Common keys first, so their problems are reported even if the rest is invalid.
            let (output, cond, on_error) = if ty == "router" {
                (None, None, OnError::Send)
            } else {
                let on_error = match c.str("on_error").as_deref() {
                    None | Some("send") => OnError::Send,
                    Some("send_quiet") => OnError::SendQuiet,
                    Some("drop") => OnError::Drop,
                    Some("drop_quiet") => OnError::DropQuiet,
                    Some(o) => {
                        c.err(
                            "on_error",
                            format!("unknown value {o:?} (send, send_quiet, drop, drop_quiet)"),
                        );
                        OnError::Send
                    }
                };
                (c.id_ref("output"), c.expr("if"), on_error)
            };
            let Some(kind) = parse_kind(&ty, &mut c) else {
                continue;
            };
            paths.push(ipath);
            ops.push(OpConfig {
                id,
                output,
                cond,
                on_error,
                kind,
            });
        }
        let cfg = OperatorsConfig {
            ops,
            raw: Some(v.clone()),
        };
        cfg.check_graph(&paths, diag);
        cfg
    }

    /// Every `output`/route/default must name an operator, and the graph must be acyclic.
    fn check_graph(&self, paths: &[String], diag: &mut Diagnostics) {
        let index: HashMap<&str, usize> = self
            .ops
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id.as_str(), i))
            .collect();
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); self.ops.len()];
        for (i, op) in self.ops.iter().enumerate() {
            let p = paths.get(i).cloned().unwrap_or_default();
            let mut refs: Vec<(String, &str)> = Vec::new();
            match &op.kind {
                Kind::Router(routes, default) => {
                    for (r, route) in routes.iter().enumerate() {
                        refs.push((format!("{p}.routes[{r}].output"), &route.output));
                    }
                    if let Some(d) = default {
                        refs.push((format!("{p}.default"), d));
                    }
                }
                _ => match &op.output {
                    Some(o) => refs.push((format!("{p}.output"), o)),
                    None => edges[i].extend((i + 1 < self.ops.len()).then_some(i + 1)),
                },
            }
            for (rp, id) in refs {
                match index.get(id) {
                    Some(t) => edges[i].push(*t),
                    None => diag.error(rp, format!("output {id:?} names no operator")),
                }
            }
        }
        // Depth-first search for a back edge.
        let mut state = vec![0u8; self.ops.len()]; // 0 new, 1 on stack, 2 done
        for start in 0..self.ops.len() {
            if state[start] != 0 {
                continue;
            }
            let mut stack = vec![(start, 0usize)];
            state[start] = 1;
            while let Some((n, k)) = stack.pop() {
                let Some(&t) = edges[n].get(k) else {
                    state[n] = 2;
                    continue;
                };
                stack.push((n, k + 1));
                match state[t] {
                    0 => {
                        state[t] = 1;
                        stack.push((t, 0));
                    }
                    1 => {
                        let p = paths.get(n).cloned().unwrap_or_default();
                        let id = &self.ops[t].id;
                        diag.error(p, format!("operator graph has a cycle (back to {id:?})"));
                    }
                    _ => {}
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Compiles the graph (regexes compiled here). Only called when parse produced no errors.
    pub fn build(&self) -> Result<Operators, String> {
        let index: HashMap<&str, usize> = self
            .ops
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id.as_str(), i))
            .collect();
        let resolve = |id: &str| {
            index
                .get(id)
                .copied()
                .ok_or_else(|| format!("output {id:?} names no operator"))
        };
        let mut nodes = Vec::with_capacity(self.ops.len());
        for (i, op) in self.ops.iter().enumerate() {
            let next = match &op.output {
                Some(o) => Some(resolve(o)?),
                None => (i + 1 < self.ops.len()).then_some(i + 1),
            };
            let run = match &op.kind {
                Kind::Router(routes, default) => Run::Router(
                    routes
                        .iter()
                        .map(|r| Ok((r.expr.clone(), r.attributes.clone(), resolve(&r.output)?)))
                        .collect::<Result<_, String>>()?,
                    default.as_deref().map(resolve).transpose()?,
                ),
                Kind::Recombine(c) => Run::Recombine(recombine::Recombine::new(c.clone())),
                Kind::Container(c) => Run::Container(container::Container::new(c.clone())),
                other => Run::Plain(other.clone()),
            };
            nodes.push(Node {
                cond: op.cond.clone(),
                on_error: op.on_error,
                next,
                run,
            });
        }
        Ok(Operators {
            nodes,
            errors: 0,
            dropped: 0,
        })
    }

    /// For serializing the effective config back (print-config): the list as YAML.
    pub fn to_value(&self) -> serde_norway::Value {
        self.raw.clone().unwrap_or(Yaml::Sequence(Vec::new()))
    }
}

fn parse_kind(ty: &str, c: &mut Cfg) -> Option<Kind> {
    let kind = match ty {
        "json_parser" | "regex_parser" | "key_value_parser" => {
            Kind::Parser(parsers::parse_parser(ty, c)?)
        }
        "time_parser" => {
            c.allow(&[COMMON, &["parse_from", "layout_type", "layout", "location"]]);
            Kind::Time(parsers::parse_time(c, Some(Field::body()))?)
        }
        "severity_parser" => {
            c.allow(&[
                COMMON,
                &["parse_from", "preset", "mapping", "overwrite_text"],
            ]);
            Kind::Severity(parsers::parse_severity(c, Some(Field::body()))?)
        }
        "trace_parser" => {
            c.allow(&[COMMON, &["trace_id", "span_id", "trace_flags"]]);
            Kind::Trace(parsers::parse_trace(c))
        }
        "move" | "copy" | "add" | "remove" | "retain" | "flatten" => {
            Kind::Transform(transform::parse(ty, c)?)
        }
        "router" => {
            c.allow(&[&["type", "id", "routes", "default"]]);
            let mut routes = Vec::new();
            match c.get("routes") {
                Some(Yaml::Sequence(items)) => {
                    for (r, item) in items.iter().enumerate() {
                        let Some(m) = item.as_mapping() else {
                            c.err(&format!("routes[{r}]"), "must be a map");
                            continue;
                        };
                        let mut rc = Cfg {
                            m,
                            path: c.p(&format!("routes[{r}]")),
                            diag: c.diag,
                        };
                        rc.allow(&[&["expr", "output", "attributes"]]);
                        let expr = rc.expr("expr");
                        if rc.get("expr").is_none() {
                            rc.err("expr", "required");
                        }
                        let output = rc.id_ref("output");
                        if output.is_none() {
                            rc.err("output", "required");
                        }
                        let attributes = match rc.get("attributes").map(yaml_to_json) {
                            None => serde_json::Map::new(),
                            Some(serde_json::Value::Object(m)) => m,
                            Some(_) => {
                                rc.err("attributes", "must be a map");
                                serde_json::Map::new()
                            }
                        };
                        if let (Some(expr), Some(output)) = (expr, output) {
                            routes.push(Route {
                                expr,
                                output,
                                attributes,
                            });
                        }
                    }
                }
                _ => c.err("routes", "required: a list of {expr, output}"),
            }
            Kind::Router(routes, c.id_ref("default"))
        }
        "recombine" => Kind::Recombine(recombine::parse(c)?),
        "container" => Kind::Container(container::parse(c)?),
        "noop" => {
            c.allow(&[COMMON]);
            Kind::Noop
        }
        other if UNSUPPORTED_TYPES.contains(&other) => {
            c.err(
                "type",
                format!("operator type {other:?} is not supported by otelgw"),
            );
            return None;
        }
        other => {
            c.err("type", format!("unknown operator type {other:?}"));
            return None;
        }
    };
    Some(kind)
}

/// A built operator.
struct Node {
    cond: Option<Expr>,
    on_error: OnError,
    next: Option<usize>,
    run: Run,
}

enum Run {
    Plain(Kind),
    Router(
        Vec<(Expr, serde_json::Map<String, serde_json::Value>, usize)>,
        Option<usize>,
    ),
    Recombine(recombine::Recombine),
    Container(container::Container),
}

/// The compiled operator graph plus recombine state.
pub struct Operators {
    nodes: Vec<Node>,
    errors: u64,
    dropped: u64,
}

impl Operators {
    /// Runs one entry through the operator graph; entries that reach the end are pushed to `out`
    /// (zero, one or — never more than one per input except when recombine flushes — entries).
    /// `now_ns` is the current time (used by recombine's force_flush_period and by time defaults).
    pub fn process(&mut self, entry: Entry, now_ns: u64, out: &mut Vec<Entry>) {
        let mut queue = VecDeque::new();
        self.route(
            if self.nodes.is_empty() { None } else { Some(0) },
            entry,
            &mut queue,
            out,
        );
        self.drain(&mut queue, now_ns, out);
    }

    /// Emits recombine batches older than their force_flush_period (call periodically), or all of them when `all`.
    pub fn flush(&mut self, now_ns: u64, all: bool, out: &mut Vec<Entry>) {
        // In list order, so batches flushed upstream can still be combined (and flushed) below.
        for i in 0..self.nodes.len() {
            let mut held = Vec::new();
            let next = match self.nodes.get_mut(i) {
                Some(n) => {
                    match &mut n.run {
                        Run::Recombine(r) => r.flush(now_ns, all, &mut held),
                        Run::Container(c) => c.flush(now_ns, all, &mut held),
                        _ => {}
                    }
                    n.next
                }
                None => None,
            };
            let mut queue = VecDeque::new();
            for e in held {
                self.route(next, e, &mut queue, out);
            }
            self.drain(&mut queue, now_ns, out);
        }
    }

    /// Entries that failed an operator (its `on_error` applied).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Entries dropped (by `on_error: drop`/`drop_quiet`, or by a router with no match and no default).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn route(
        &self,
        to: Option<usize>,
        e: Entry,
        queue: &mut VecDeque<(usize, Entry)>,
        out: &mut Vec<Entry>,
    ) {
        match to {
            Some(i) => queue.push_back((i, e)),
            None => out.push(e),
        }
    }

    fn drain(&mut self, queue: &mut VecDeque<(usize, Entry)>, now_ns: u64, out: &mut Vec<Entry>) {
        while let Some((i, mut e)) = queue.pop_front() {
            let Some(node) = self.nodes.get_mut(i) else {
                out.push(e);
                continue;
            };
            let next = node.next;
            if node.cond.as_ref().is_some_and(|c| !c.eval_bool(&e)) {
                self.route(next, e, queue, out);
                continue;
            }
            let on_error = node.on_error;
            let mut emitted = Vec::new();
            let result = match &mut node.run {
                Run::Router(routes, default) => {
                    let hit =
                        routes
                            .iter()
                            .find(|(x, _, _)| x.eval_bool(&e))
                            .map(|(_, attrs, t)| {
                                e.attributes
                                    .extend(attrs.iter().map(|(k, v)| (k.clone(), v.clone())));
                                *t
                            });
                    match hit.or(*default) {
                        Some(t) => queue.push_back((t, e)),
                        None => self.dropped += 1,
                    }
                    continue;
                }
                Run::Recombine(r) => {
                    r.process(e, now_ns, &mut emitted);
                    Ok(())
                }
                Run::Container(c) => c.process(e, now_ns, &mut emitted),
                Run::Plain(kind) => {
                    let r = apply(kind, &mut e, now_ns);
                    emitted.push(e);
                    r
                }
            };
            if let Err(failed) = result {
                self.errors += 1;
                if matches!(on_error, OnError::Drop | OnError::DropQuiet) {
                    self.dropped += emitted.len() as u64;
                    emitted.clear();
                } else if let Some(f) = failed {
                    emitted.push(*f);
                }
            }
            for e in emitted {
                self.route(next, e, queue, out);
            }
        }
    }
}

/// Runs a stateless operator. On error the entry is left as the operator found it
/// (parsers fail before writing) except for embedded blocks after a successful parse.
fn apply(kind: &Kind, e: &mut Entry, now_ns: u64) -> Result<(), Option<Box<Entry>>> {
    let r = match kind {
        Kind::Parser(p) => p.apply(e, now_ns),
        Kind::Time(t) => t.apply(e, now_ns),
        Kind::Severity(s) => s.apply(e),
        Kind::Trace(t) => t.apply(e),
        Kind::Transform(t) => t.apply(e),
        Kind::Noop | Kind::Router(..) | Kind::Recombine(_) | Kind::Container(_) => Ok(()),
    };
    r.map_err(|_msg| None)
}
