//! `json_parser`, `regex_parser`, `key_value_parser`, and the `time_parser`,
//! `severity_parser` and `trace_parser` operators (also embedded in parsers as
//! `timestamp:`, `severity:` and `trace:` blocks, run after the parse).

use super::field::Field;
use super::severity::{self, Mapping};
use super::time::{self, Location, Tok};
use super::{Cfg, Entry, COMMON};
use regex::Regex;
use serde_json::{Map, Value};

/// A body parser: where from, where to, how, and the embedded blocks.
#[derive(Debug, Clone)]
pub struct ParserCfg {
    /// `parse_from` (default `body`): the field holding the text.
    pub parse_from: Field,
    /// `parse_to` (default `attributes`): where the parsed map goes (merged at a bare root).
    pub parse_to: Field,
    /// How the text becomes a map.
    pub how: How,
    /// Embedded blocks run after the parse.
    pub embedded: Embedded,
}

#[derive(Debug, Clone)]
pub enum How {
    /// `parse_ints`: integers stay integers; otherwise every number is a double (the
    /// Collector's default).
    Json { parse_ints: bool },
    /// `regex`: named groups become keys.
    Regex(Regex),
    /// `delimiter` (default `=`) and `pair_delimiter` (default: whitespace).
    KeyValue {
        delimiter: String,
        pair_delimiter: Option<String>,
    },
}

/// The `timestamp:`, `severity:` and `trace:` blocks of a parser.
#[derive(Debug, Clone, Default)]
pub struct Embedded {
    pub timestamp: Option<TimeCfg>,
    pub severity: Option<SeverityCfg>,
    pub trace: Option<TraceCfg>,
}

const PARSER_KEYS: &[&str] = &[
    "parse_from",
    "parse_to",
    "timestamp",
    "severity",
    "trace",
    "scope_name",
];

pub fn parse_parser(ty: &str, c: &mut Cfg) -> Option<ParserCfg> {
    let how = match ty {
        "json_parser" => {
            c.allow(&[COMMON, PARSER_KEYS, &["parse_ints"]]);
            How::Json {
                parse_ints: c.bool("parse_ints", false),
            }
        }
        "regex_parser" => {
            c.allow(&[COMMON, PARSER_KEYS, &["regex", "cache"]]);
            let Some(src) = c.str("regex") else {
                c.err("regex", "required");
                return None;
            };
            match Regex::new(&src) {
                Ok(re) if re.capture_names().flatten().next().is_some() => How::Regex(re),
                Ok(_) => {
                    c.err(
                        "regex",
                        "must contain at least one named group (?P<name>...)",
                    );
                    return None;
                }
                Err(e) => {
                    c.err("regex", format!("invalid regex: {e}"));
                    return None;
                }
            }
        }
        _ => {
            c.allow(&[COMMON, PARSER_KEYS, &["delimiter", "pair_delimiter"]]);
            let delimiter = c.str_or("delimiter", "=");
            let pair_delimiter = c.str("pair_delimiter");
            if delimiter.is_empty() || pair_delimiter.as_deref() == Some("") {
                c.err("delimiter", "delimiters must not be empty");
            }
            if pair_delimiter.as_deref() == Some(delimiter.as_str()) {
                c.err("pair_delimiter", "must differ from delimiter");
            }
            How::KeyValue {
                delimiter,
                pair_delimiter,
            }
        }
    };
    let parse_from = c.field_or("parse_from", Field::body());
    let parse_to = c.field_or(
        "parse_to",
        Field {
            root: super::field::Root::Attributes,
            path: vec![],
        },
    );
    let embedded = parse_embedded(c);
    Some(ParserCfg {
        parse_from,
        parse_to,
        how,
        embedded,
    })
}

/// Reads the `timestamp`, `severity`, `trace` and (rejected) `scope_name` blocks.
pub fn parse_embedded(c: &mut Cfg) -> Embedded {
    if c.get("scope_name").is_some() {
        c.err("scope_name", "not supported by otelgw");
    }
    let timestamp = c.sub("timestamp").and_then(|mut s| {
        s.allow(&[&["parse_from", "layout_type", "layout", "location"]]);
        parse_time(&mut s, None)
    });
    let severity = c.sub("severity").and_then(|mut s| {
        s.allow(&[&["parse_from", "preset", "mapping", "overwrite_text"]]);
        parse_severity(&mut s, None)
    });
    let trace = c.sub("trace").map(|mut s| {
        s.allow(&[&["trace_id", "span_id", "trace_flags"]]);
        parse_trace(&mut s)
    });
    Embedded {
        timestamp,
        severity,
        trace,
    }
}

impl ParserCfg {
    pub fn apply(&self, e: &mut Entry, now_ns: u64) -> Result<(), String> {
        let v = self
            .parse_from
            .get(e)
            .ok_or_else(|| format!("{} is missing", self.parse_from))?;
        let Value::String(text) = v else {
            return Err(format!("{} is not a string", self.parse_from));
        };
        let map = match &self.how {
            How::Json { parse_ints } => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(mut m)) => {
                    if !parse_ints {
                        m.values_mut().for_each(doubles);
                    }
                    m
                }
                Ok(_) => return Err("JSON is not an object".into()),
                Err(err) => return Err(format!("invalid JSON: {err}")),
            },
            How::Regex(re) => {
                let caps = re.captures(&text).ok_or("regex pattern does not match")?;
                re.capture_names()
                    .flatten()
                    // a group that took no part in the match is "" (the Collector's MatchValues)
                    .map(|n| {
                        let v = caps.name(n).map_or("", |m| m.as_str());
                        (n.to_string(), Value::String(v.into()))
                    })
                    .collect()
            }
            How::KeyValue {
                delimiter,
                pair_delimiter,
            } => key_values(&text, delimiter, pair_delimiter.as_deref())?,
        };
        self.parse_to.set(e, Value::Object(map))?;
        self.embedded.apply(e, now_ns)
    }
}

impl Embedded {
    pub fn apply(&self, e: &mut Entry, now_ns: u64) -> Result<(), String> {
        if let Some(t) = &self.timestamp {
            t.apply(e, now_ns)?;
        }
        if let Some(s) = &self.severity {
            s.apply(e)?;
        }
        if let Some(t) = &self.trace {
            t.apply(e)?;
        }
        Ok(())
    }
}

/// Splits on `sep` (or runs of whitespace) outside double or single quotes.
fn split_quoted<'a>(s: &'a str, sep: Option<&str>) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {
                let hit = match sep {
                    Some(sep) => s[i..].starts_with(sep).then_some(sep.len()),
                    None => c.is_whitespace().then_some(c.len_utf8()),
                };
                if let Some(n) = hit {
                    out.push(&s[start..i]);
                    start = i + n;
                    while it.peek().is_some_and(|(j, _)| *j < start) {
                        it.next();
                    }
                }
            }
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn key_values(
    text: &str,
    delim: &str,
    pair_delim: Option<&str>,
) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    for pair in split_quoted(text, pair_delim) {
        let (k, v) = pair
            .split_once(delim)
            .ok_or_else(|| format!("cannot split {pair:?} into key and value"))?;
        m.insert(
            unquote(k).to_string(),
            Value::String(unquote(v).to_string()),
        );
    }
    Ok(m)
}

/// `time_parser` / `timestamp:`.
#[derive(Debug, Clone)]
pub struct TimeCfg {
    /// `parse_from`: the field holding the time.
    pub parse_from: Field,
    /// `layout_type` + `layout`, compiled.
    pub layout: Layout,
    /// `location` (default `Local`): the zone of times written without one.
    pub location: Location,
}

#[derive(Debug, Clone)]
pub enum Layout {
    Text(Vec<Tok>),
    /// Nanoseconds per unit.
    Epoch(u64),
}

/// Reads a time config; `default_from` is `Some` for the standalone operator.
pub fn parse_time(c: &mut Cfg, default_from: Option<Field>) -> Option<TimeCfg> {
    let parse_from = match (c.get("parse_from"), default_from) {
        (None, Some(d)) => Some(d),
        (None, None) => {
            c.err("parse_from", "required");
            None
        }
        _ => c.field("parse_from"),
    };
    let ty = c.str_or("layout_type", "strptime");
    let layout = c.str("layout");
    let location = match Location::parse(&c.str_or("location", "Local")) {
        Ok(l) => l,
        Err(e) => {
            c.err("location", e);
            Location::Local
        }
    };
    let Some(layout) = layout else {
        c.err("layout", "required");
        return None;
    };
    let compiled = match ty.as_str() {
        "strptime" => time::strptime(&layout).map(Layout::Text),
        "gotime" => time::gotime(&layout).map(Layout::Text),
        "epoch" => time::epoch_unit(&layout).map(Layout::Epoch).ok_or_else(|| {
            format!("unknown epoch layout {layout:?} (s, ms, us, ns, s.ms, s.us, s.ns)")
        }),
        other => {
            c.err(
                "layout_type",
                format!("unknown layout_type {other:?} (strptime, gotime, epoch)"),
            );
            return None;
        }
    };
    let layout = compiled.map_err(|e| c.err("layout", e)).ok()?;
    Some(TimeCfg {
        parse_from: parse_from?,
        layout,
        location,
    })
}

impl TimeCfg {
    pub fn apply(&self, e: &mut Entry, now_ns: u64) -> Result<(), String> {
        let v = self
            .parse_from
            .get(e)
            .ok_or_else(|| format!("{} is missing", self.parse_from))?;
        let ts = match (&self.layout, &v) {
            (Layout::Epoch(unit), v) => time::parse_epoch(v, *unit)?,
            (Layout::Text(toks), Value::String(s)) => time::parse(toks, s, self.location, now_ns)?,
            (Layout::Text(_), other) => return Err(format!("cannot parse {other} as a time")),
        };
        e.timestamp = Some(ts);
        Ok(())
    }
}

/// `severity_parser` / `severity:`.
#[derive(Debug, Clone)]
pub struct SeverityCfg {
    /// `parse_from`: the field holding the level.
    pub parse_from: Field,
    /// `preset` (default `default`) + `mapping`, compiled.
    pub mapping: Mapping,
    /// `overwrite_text`: set the text to the level's short name (e.g. `ERROR`).
    pub overwrite_text: bool,
}

pub fn parse_severity(c: &mut Cfg, default_from: Option<Field>) -> Option<SeverityCfg> {
    let parse_from = match (c.get("parse_from"), default_from) {
        (None, Some(d)) => Some(d),
        (None, None) => {
            c.err("parse_from", "required");
            None
        }
        _ => c.field("parse_from"),
    };
    let preset = c.str_or("preset", "default");
    let overwrite_text = c.bool("overwrite_text", false);
    let mapping = match Mapping::build(&preset, c.get("mapping")) {
        Ok(m) => Some(m),
        Err(e) => {
            let key = if e.starts_with("unknown preset") {
                "preset"
            } else {
                "mapping"
            };
            c.err(key, e);
            None
        }
    };
    Some(SeverityCfg {
        parse_from: parse_from?,
        mapping: mapping?,
        overwrite_text,
    })
}

impl SeverityCfg {
    pub fn apply(&self, e: &mut Entry) -> Result<(), String> {
        let v = self
            .parse_from
            .get(e)
            .ok_or_else(|| format!("{} is missing", self.parse_from))?;
        let (sev, text) = self
            .mapping
            .lookup(&v)
            .ok_or_else(|| format!("cannot parse {v} as a severity"))?;
        e.severity = sev;
        e.severity_text = match severity::short_name(sev) {
            Some(name) if self.overwrite_text => name,
            _ => text,
        };
        Ok(())
    }
}

/// `trace_parser` / `trace:`.
#[derive(Debug, Clone)]
pub struct TraceCfg {
    /// `trace_id.parse_from` (default `attributes.trace_id`).
    pub trace_id: Field,
    /// `span_id.parse_from` (default `attributes.span_id`).
    pub span_id: Field,
    /// `trace_flags.parse_from` (default `attributes.trace_flags`).
    pub trace_flags: Field,
}

pub fn parse_trace(c: &mut Cfg) -> TraceCfg {
    let mut one = |key: &str| {
        let default = Field::attr(key);
        match c.sub(key) {
            Some(mut s) => {
                s.allow(&[&["parse_from"]]);
                s.field_or("parse_from", default)
            }
            None => default,
        }
    };
    TraceCfg {
        trace_id: one("trace_id"),
        span_id: one("span_id"),
        trace_flags: one("trace_flags"),
    }
}

fn hex(s: &str, want: usize, what: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("{what} {s:?} is not {want} bytes of hex");
    if s.len() != want * 2 || !s.is_ascii() {
        return Err(bad());
    }
    (0..want)
        .map(|i| {
            s.get(i * 2..i * 2 + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

impl TraceCfg {
    pub fn apply(&self, e: &mut Entry) -> Result<(), String> {
        let get = |f: &Field| f.get_str(e).map(str::to_string);
        let (t, s, f) = (
            get(&self.trace_id),
            get(&self.span_id),
            get(&self.trace_flags),
        );
        let t = t.map(|t| hex(&t, 16, "trace_id")).transpose()?;
        let s = s.map(|s| hex(&s, 8, "span_id")).transpose()?;
        let f = f.map(|f| hex(&f, 1, "trace_flags")).transpose()?;
        if let Some(t) = t {
            e.trace_id = t;
        }
        if let Some(s) = s {
            e.span_id = s;
        }
        if let Some(f) = f.and_then(|f| f.first().copied()) {
            e.trace_flags = u32::from(f);
        }
        Ok(())
    }
}

/// Every number in a JSON value as a double (nested maps and arrays too).
fn doubles(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                if let Some(d) = serde_json::Number::from_f64(f) {
                    *n = d;
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(doubles),
        Value::Object(m) => m.values_mut().for_each(doubles),
        _ => {}
    }
}
