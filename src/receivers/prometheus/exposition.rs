//! A parser of the Prometheus text exposition format 0.0.4 ([`Format::Text`]) and of the
//! OpenMetrics 1.0 text format ([`Format::OpenMetrics`]), matching the behaviour of
//! Prometheus 2.x' own parsers (`textparse/promparse.go`, `textparse/openmetricsparse.go`)
//! where the formats leave room, and stricter where noted.
//!
//! [`parse`] turns a whole scrape body into metric [`Family`]s, in the order they appear. It
//! borrows from the input: names, label names and units are `&str` slices of it; label values
//! and help texts are `Cow`s that own a `String` only when the text had an escape. Per sample it
//! allocates nothing but its labels `Vec`. It bounds nothing: the caller limits the body size.
//! It never panics, whatever the input.
//!
//! # Lines
//!
//! Lines end with `\n`; a `\r` before it is dropped (`\r\n` is tolerated). Line numbers in
//! [`ParseError`] are 1-based.
//!
//! **Text** (0.0.4):
//! - Blank lines and lines of only spaces/tabs are ignored; a missing final `\n` is tolerated.
//! - `# HELP name text`: the help is everything after the one space or tab that follows the
//!   name (may be empty); escapes `\\` and `\n` are undone, any other `\x` is kept as written.
//! - `# TYPE name counter|gauge|histogram|summary|untyped` (untyped is [`MetricType::Unknown`]).
//! - Any other line starting with `#` (after optional spaces), including `#HELP …` and
//!   `# UNIT …`, is a comment and ignored.
//! - Sample: `name[{label="value",…}] value [timestamp]`. Spaces and tabs are allowed between
//!   all tokens, also inside the braces; a trailing comma in the braces is allowed. The
//!   timestamp is integer milliseconds. A `#` after the value is an error: the text format
//!   has no exemplars and no trailing comments.
//!
//! **OpenMetrics** (1.0):
//! - Tokens are separated by exactly one space; no leading/trailing or inner spaces, no tabs.
//! - Blank lines are errors; `#` lines must be `# HELP name text`, `# TYPE name type`,
//!   `# UNIT name unit` or `# EOF`. Types: `counter gauge histogram gaugehistogram summary info
//!   stateset unknown`. HELP escapes also include `\"`. A non-empty unit must be a suffix of the
//!   family name after an `_` (as Prometheus checks); an empty unit gives `unit: None`.
//! - The body must end with the line `# EOF`, optionally followed by one line break; anything
//!   after it (even an empty line) is an error, and so is a missing `# EOF`.
//! - Sample: `name[{labels}] value [timestamp] [# {labels} value [timestamp]]`. Timestamps are
//!   float seconds, converted to milliseconds (rounded to the nearest ms); `NaN`/`±Inf` or out
//!   of `i64` range is an error. An exemplar is allowed only on a counter's `_total` sample and
//!   on a histogram's or gauge histogram's `_bucket` samples; its labels may be empty.
//!
//! **Both**: metric names are `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`
//! and a label name may not repeat within one label set. Label values escape `\\`, `\"` and
//! `\n`; other escapes are kept as written (as Prometheus does); a value cannot span lines.
//! Values are floats as Rust/Go parse them (`1`, `-1.5e-3`, `.5`, `NaN`, `Inf`, `+Inf`,
//! `-Inf`, case-insensitive); a finite literal that overflows to infinity (`1e400`) is an
//! error, as in Prometheus. Hex floats are not accepted.
//!
//! # Grouping
//!
//! A family starts at a `# HELP`, `# TYPE` or `# UNIT` line for a name other than the current
//! family's, or for the current family's name once it has samples. Metadata lines for the
//! current family before its first sample may come in any order; a second `# TYPE` (or `# HELP`,
//! or `# UNIT`) for it there is an error.
//!
//! A sample belongs to the current family when its name is the family name, or the family name
//! plus a suffix valid for the family's type:
//!
//! | type | text | OpenMetrics |
//! | --- | --- | --- |
//! | counter | — | `_total`, `_created` |
//! | histogram | `_bucket`, `_sum`, `_count` | `_bucket`, `_count`, `_sum`, `_created` |
//! | gaugehistogram | — | `_bucket`, `_gcount`, `_gsum` |
//! | summary | `_sum`, `_count` | `_count`, `_sum`, `_created` |
//! | info | — | `_info` |
//! | gauge, stateset, unknown/untyped | — | — |
//!
//! Otherwise the sample starts a new family of kind [`MetricType::Unknown`] named after the
//! sample. The family name is thus the metadata's name (for an OpenMetrics counter, the name
//! without `_total`, as written in its `# TYPE`), or the sample's name for samples without
//! metadata. A family whose metadata is followed by no sample is still returned (with no
//! samples).
//!
//! In the text format a family name may appear again later (Prometheus tolerates it): it just
//! starts another [`Family`] entry. In OpenMetrics that is an error (`metric family "x" appears
//! twice`), detected for metadata lines and for samples whose name, or name minus a valid
//! suffix, names an earlier family; metadata for a family after its samples is an error too.
//!
//! Not checked here (semantic, left to the caller): `le`/`quantile` labels, bucket order,
//! counter monotonicity, `_created` consistency.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Which exposition format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text format (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// From a response's Content-Type: `application/openmetrics-text` → OpenMetrics, anything
    /// else (incl. missing) → Text. Parameters (`; version=1.0.0; charset=utf-8`) and case are
    /// ignored.
    pub fn from_content_type(ct: Option<&str>) -> Format {
        let media = ct
            .and_then(|ct| ct.split(';').next())
            .map(str::trim)
            .unwrap_or("");
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// A metric family's type. The text format's `untyped` is [`MetricType::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// The OpenMetrics name of the type (`unknown` for [`MetricType::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn from_type_word(word: &str, format: Format) -> Option<MetricType> {
        let kind = match (word, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            _ => return None,
        };
        Some(kind)
    }
}

/// The suffixes (besides the bare family name) a sample of a family of `kind` may have.
pub fn sample_suffixes(kind: MetricType, format: Format) -> &'static [&'static str] {
    match (format, kind) {
        (Format::Text, MetricType::Histogram) => &["_bucket", "_sum", "_count"],
        (Format::Text, MetricType::Summary) => &["_sum", "_count"],
        (Format::Text, _) => &[],
        (Format::OpenMetrics, MetricType::Counter) => &["_total", "_created"],
        (Format::OpenMetrics, MetricType::Histogram) => &["_bucket", "_count", "_sum", "_created"],
        (Format::OpenMetrics, MetricType::GaugeHistogram) => &["_bucket", "_gcount", "_gsum"],
        (Format::OpenMetrics, MetricType::Summary) => &["_count", "_sum", "_created"],
        (Format::OpenMetrics, MetricType::Info) => &["_info"],
        (Format::OpenMetrics, _) => &[],
    }
}

/// Every suffix of [`sample_suffixes`], for the OpenMetrics interleaving check.
const ALL_SUFFIXES: [&str; 8] = [
    "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info",
];

/// An OpenMetrics exemplar (` # {trace_id="…"} value [timestamp]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// Float seconds as written, converted to ms.
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The sample's full name as written, e.g. `http_requests_total`, `rpc_seconds_bucket`.
    pub name: &'a str,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// Text: integer ms as written. OpenMetrics: float seconds as written, converted to ms.
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar<'a>>,
}

/// A metric family: its metadata and its samples in the order written.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    /// The family name: for histograms/summaries without `_bucket`/`_sum`/`_count`; in
    /// OpenMetrics counters without `_total`; for untyped samples the sample name.
    pub name: &'a str,
    pub kind: MetricType,
    pub help: Option<Cow<'a, str>>,
    pub unit: Option<&'a str>,
    pub samples: Vec<Sample<'a>>,
}

/// Why a body could not be parsed: the 1-based line and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole scrape body. See the module docs for what is accepted.
pub fn parse(input: &str, format: Format) -> Result<Vec<Family<'_>>, ParseError> {
    let mut parser = Parser {
        format,
        families: Vec::new(),
        meta: MetaSeen::default(),
        seen: HashMap::new(),
    };
    let mut rest = input;
    let mut line_no = 0usize;
    let mut saw_eof = false;
    while !rest.is_empty() {
        line_no += 1;
        let (raw, next) = rest.split_once('\n').unwrap_or((rest, ""));
        rest = next;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if format == Format::OpenMetrics && line == "# EOF" {
            if !rest.is_empty() {
                return Err(ParseError {
                    line: line_no + 1,
                    message: "unexpected content after # EOF".to_string(),
                });
            }
            saw_eof = true;
            break;
        }
        parser.line(line).map_err(|message| ParseError {
            line: line_no,
            message,
        })?;
    }
    if format == Format::OpenMetrics && !saw_eof {
        return Err(ParseError {
            line: line_no + 1,
            message: "expected \"# EOF\" at the end of the input".to_string(),
        });
    }
    Ok(parser.families)
}

/// Which metadata the current family has had (before its first sample).
#[derive(Default)]
struct MetaSeen {
    help: bool,
    kind: bool,
    unit: bool,
}

#[derive(Clone, Copy)]
enum Meta {
    Help,
    Type,
    Unit,
}

impl Meta {
    fn keyword(self) -> &'static str {
        match self {
            Meta::Help => "HELP",
            Meta::Type => "TYPE",
            Meta::Unit => "UNIT",
        }
    }
}

struct Parser<'a> {
    format: Format,
    families: Vec<Family<'a>>,
    /// Metadata of the last family.
    meta: MetaSeen,
    /// OpenMetrics only: every family started so far and its type.
    seen: HashMap<&'a str, MetricType>,
}

impl<'a> Parser<'a> {
    fn line(&mut self, line: &'a str) -> Result<(), String> {
        match self.format {
            Format::Text => {
                let line = line.trim_start_matches([' ', '\t']);
                if line.is_empty() {
                    Ok(())
                } else if let Some(comment) = line.strip_prefix('#') {
                    self.text_comment(comment)
                } else {
                    self.sample(line)
                }
            }
            Format::OpenMetrics => {
                if line.is_empty() {
                    Err("expected a sample or a '#' line, found an empty line \
                         (not allowed in openmetrics)"
                        .to_string())
                } else if let Some(comment) = line.strip_prefix('#') {
                    self.om_comment(comment)
                } else {
                    self.sample(line)
                }
            }
        }
    }

    /// A text-format line after its `#`.
    fn text_comment(&mut self, after_hash: &'a str) -> Result<(), String> {
        let body = after_hash.trim_start_matches([' ', '\t']);
        if body.len() == after_hash.len() {
            return Ok(()); // `#HELP …`: a comment
        }
        let (meta, rest) = if let Some(rest) = body.strip_prefix("HELP") {
            (Meta::Help, rest)
        } else if let Some(rest) = body.strip_prefix("TYPE") {
            (Meta::Type, rest)
        } else {
            return Ok(());
        };
        let body = rest.trim_start_matches([' ', '\t']);
        if body.len() == rest.len() {
            return Ok(()); // `# HELPER …` or a bare `# HELP`: a comment
        }
        let keyword = meta.keyword();
        let (name, after_name) = split_metric_name(body);
        if name.is_empty() {
            return Err(format!(
                "expected metric name after # {keyword}, found {}",
                describe(after_name)
            ));
        }
        let text = match after_name.as_bytes().first() {
            None => "",
            Some(b' ' | b'\t') => after_name.get(1..).unwrap_or(""),
            Some(_) => {
                return Err(format!(
                    "expected whitespace after metric name {name:?} in # {keyword}, found {}",
                    describe(after_name)
                ));
            }
        };
        match meta {
            Meta::Help => self.set_help(name, unescape(text, false)),
            Meta::Type => self.set_type(name, text.trim_matches([' ', '\t'])),
            Meta::Unit => Ok(()),
        }
    }

    /// An OpenMetrics line after its `#` (not `# EOF`, handled by [`parse`]).
    fn om_comment(&mut self, after_hash: &'a str) -> Result<(), String> {
        let expected = "expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\" \
                        (openmetrics allows no other comments)";
        let Some(body) = after_hash.strip_prefix(' ') else {
            return Err(expected.to_string());
        };
        let (meta, rest) = if let Some(rest) = body.strip_prefix("HELP") {
            (Meta::Help, rest)
        } else if let Some(rest) = body.strip_prefix("TYPE") {
            (Meta::Type, rest)
        } else if let Some(rest) = body.strip_prefix("UNIT") {
            (Meta::Unit, rest)
        } else {
            return Err(expected.to_string());
        };
        let keyword = meta.keyword();
        let Some(body) = rest.strip_prefix(' ') else {
            if rest.is_empty() {
                return Err(format!("expected ' ' and metric name after # {keyword}"));
            }
            return Err(expected.to_string());
        };
        let (name, after_name) = split_metric_name(body);
        if name.is_empty() {
            return Err(format!(
                "expected metric name after # {keyword}, found {}",
                describe(after_name)
            ));
        }
        let text = if after_name.is_empty() {
            ""
        } else if let Some(text) = after_name.strip_prefix(' ') {
            text
        } else {
            return Err(format!(
                "expected ' ' after metric name {name:?} in # {keyword}, found {}",
                describe(after_name)
            ));
        };
        match meta {
            Meta::Help => self.set_help(name, unescape(text, true)),
            Meta::Type => self.set_type(name, text),
            Meta::Unit => self.set_unit(name, text),
        }
    }

    fn set_help(&mut self, name: &'a str, help: Cow<'a, str>) -> Result<(), String> {
        let family = self.metadata_family(name, Meta::Help)?;
        family.help = Some(help);
        self.meta.help = true;
        Ok(())
    }

    fn set_type(&mut self, name: &'a str, word: &str) -> Result<(), String> {
        let Some(kind) = MetricType::from_type_word(word, self.format) else {
            let expected = match self.format {
                Format::Text => "counter, gauge, histogram, summary or untyped",
                Format::OpenMetrics => {
                    "counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown"
                }
            };
            if word.is_empty() {
                return Err(format!(
                    "expected metric type after # TYPE {name} ({expected})"
                ));
            }
            return Err(format!(
                "invalid metric type {word:?} for {name:?} (expected {expected})"
            ));
        };
        let family = self.metadata_family(name, Meta::Type)?;
        family.kind = kind;
        self.meta.kind = true;
        if self.format == Format::OpenMetrics {
            self.seen.insert(name, kind);
        }
        Ok(())
    }

    fn set_unit(&mut self, name: &'a str, unit: &'a str) -> Result<(), String> {
        if !unit.is_empty()
            && !name
                .strip_suffix(unit)
                .is_some_and(|base| base.ends_with('_'))
        {
            return Err(format!(
                "unit {unit:?} is not a suffix of metric name {name:?} \
                 (expected the name to end with \"_{unit}\")"
            ));
        }
        let family = self.metadata_family(name, Meta::Unit)?;
        family.unit = (!unit.is_empty()).then_some(unit);
        self.meta.unit = true;
        Ok(())
    }

    /// The family a metadata line for `name` applies to: the current one if it is `name` and
    /// has no samples yet, else a new one.
    fn metadata_family(&mut self, name: &'a str, meta: Meta) -> Result<&mut Family<'a>, String> {
        let keyword = meta.keyword();
        let reuse = match self.families.last() {
            Some(family) if family.name == name => {
                if !family.samples.is_empty() {
                    if self.format == Format::OpenMetrics {
                        return Err(format!(
                            "# {keyword} for metric family {name:?} after its samples \
                             (expected metadata before the samples)"
                        ));
                    }
                    false // text: tolerated, starts another entry
                } else {
                    true
                }
            }
            _ => false,
        };
        if reuse {
            let duplicate = match meta {
                Meta::Help => self.meta.help,
                Meta::Type => self.meta.kind,
                Meta::Unit => self.meta.unit,
            };
            if duplicate {
                return Err(format!(
                    "duplicate # {keyword} line for metric family {name:?}"
                ));
            }
        } else {
            self.start_family(name)?;
        }
        self.families
            .last_mut()
            .ok_or_else(|| "internal error: no current metric family".to_string())
    }

    fn start_family(&mut self, name: &'a str) -> Result<(), String> {
        if self.format == Format::OpenMetrics {
            if self.seen.contains_key(name) {
                return Err(appears_twice(name));
            }
            self.seen.insert(name, MetricType::Unknown);
        }
        self.families.push(Family {
            name,
            kind: MetricType::Unknown,
            help: None,
            unit: None,
            samples: Vec::new(),
        });
        self.meta = MetaSeen::default();
        Ok(())
    }

    fn sample(&mut self, line: &'a str) -> Result<(), String> {
        let sample = parse_sample(line, self.format)?;
        let belongs = self
            .families
            .last()
            .is_some_and(|f| belongs(f.name, f.kind, sample.name, self.format));
        if !belongs {
            if self.format == Format::OpenMetrics {
                if let Some(earlier) = self.om_earlier_family(sample.name) {
                    return Err(appears_twice(earlier));
                }
            }
            self.start_family(sample.name)?;
        }
        let Some(family) = self.families.last_mut() else {
            return Err("internal error: no current metric family".to_string());
        };
        if sample.exemplar.is_some() && !exemplar_allowed(family.kind, sample.name) {
            return Err(format!(
                "unexpected exemplar on {:?} (a {} sample): exemplars are only allowed on \
                 counter _total and histogram _bucket samples",
                sample.name,
                family.kind.as_str()
            ));
        }
        family.samples.push(sample);
        Ok(())
    }

    /// OpenMetrics: the earlier family a sample named `name` would belong to, if any.
    fn om_earlier_family(&self, name: &'a str) -> Option<&'a str> {
        if self.seen.contains_key(name) {
            return Some(name);
        }
        ALL_SUFFIXES.iter().find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            let (&base, &kind) = self.seen.get_key_value(base)?;
            sample_suffixes(kind, Format::OpenMetrics)
                .contains(suffix)
                .then_some(base)
        })
    }
}

fn appears_twice(name: &str) -> String {
    format!("metric family {name:?} appears twice (expected all its lines together)")
}

/// Whether a sample named `name` belongs to a family `family` of `kind`.
fn belongs(family: &str, kind: MetricType, name: &str, format: Format) -> bool {
    name.strip_prefix(family)
        .is_some_and(|rest| rest.is_empty() || sample_suffixes(kind, format).contains(&rest))
}

fn exemplar_allowed(kind: MetricType, name: &str) -> bool {
    match kind {
        MetricType::Counter => name.ends_with("_total"),
        MetricType::Histogram | MetricType::GaugeHistogram => name.ends_with("_bucket"),
        _ => false,
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits a leading metric name (possibly empty) off `s`.
fn split_metric_name(s: &str) -> (&str, &str) {
    let mut cursor = Cursor::new(s);
    let name = cursor.metric_name();
    (name, cursor.rest())
}

/// How to name the start of `rest` in an error: `'x'` or `end of line`.
fn describe(rest: &str) -> String {
    match rest.chars().next() {
        Some(c) => format!("{c:?}"),
        None => "end of line".to_string(),
    }
}

/// Undoes `\\`, `\n` and (with `quote`) `\"`; other escapes are kept as written. Borrows
/// when there is no backslash.
fn unescape(s: &str, quote: bool) -> Cow<'_, str> {
    let Some(first) = s.find('\\') else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(s.get(..first).unwrap_or(""));
    let mut chars = s.get(first..).unwrap_or("").chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

fn parse_value(token: &str) -> Result<f64, String> {
    match token.parse::<f64>() {
        // A finite literal that overflowed (Go's ParseFloat reports ErrRange).
        Ok(v) if v.is_infinite() && !token.bytes().any(|b| b.eq_ignore_ascii_case(&b'i')) => {
            Err(format!("value {token:?} is out of range"))
        }
        Ok(v) => Ok(v),
        Err(_) => Err(format!("invalid value {token:?}")),
    }
}

fn parse_text_timestamp(token: &str) -> Result<i64, String> {
    let digits = token.strip_prefix('-').unwrap_or(token);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid timestamp {token:?} (expected integer milliseconds)"
        ));
    }
    token
        .parse::<i64>()
        .map_err(|_| format!("timestamp {token:?} is out of range"))
}

/// Largest magnitude (ms) accepted for an OpenMetrics timestamp: below `i64::MAX`.
const MAX_TIMESTAMP_MS: f64 = 9.2e18;

fn parse_om_timestamp(token: &str) -> Result<i64, String> {
    let secs = token
        .parse::<f64>()
        .map_err(|_| format!("invalid timestamp {token:?} (expected float seconds)"))?;
    let ms = (secs * 1000.0).round();
    if !ms.is_finite() || ms.abs() >= MAX_TIMESTAMP_MS {
        return Err(format!("timestamp {token:?} is out of range"));
    }
    Ok(ms as i64)
}

/// Parses one sample line (text: leading whitespace already skipped).
fn parse_sample(line: &str, format: Format) -> Result<Sample<'_>, String> {
    let mut c = Cursor::new(line);
    let name = c.metric_name();
    if name.is_empty() {
        return Err(format!(
            "expected metric name, found {}",
            describe(c.rest())
        ));
    }
    let mut labels = Vec::new();
    match format {
        Format::Text => {
            let spaces = c.skip_ws();
            if c.eat(b'{') {
                parse_labels(&mut c, format, &mut labels)?;
                c.skip_ws();
            } else if spaces == 0 && !c.at_end() {
                return Err(format!(
                    "invalid character {} after metric name {name:?} (expected '{{', \
                     whitespace or value)",
                    describe(c.rest())
                ));
            }
            let token = c.take_until_ws();
            if token.is_empty() {
                return Err(format!("expected value for {name:?}, found end of line"));
            }
            let value = parse_value(token)?;
            c.skip_ws();
            let mut timestamp_ms = None;
            if c.peek() == Some(b'#') {
                return Err("unexpected '#' after the value (the text format has no \
                            exemplars or trailing comments)"
                    .to_string());
            }
            if !c.at_end() {
                timestamp_ms = Some(parse_text_timestamp(c.take_until_ws())?);
                c.skip_ws();
                if !c.at_end() {
                    return Err(format!(
                        "unexpected {:?} after the timestamp (expected end of line)",
                        c.rest()
                    ));
                }
            }
            Ok(Sample {
                name,
                labels,
                value,
                timestamp_ms,
                exemplar: None,
            })
        }
        Format::OpenMetrics => {
            let braces = c.eat(b'{');
            if braces {
                parse_labels(&mut c, format, &mut labels)?;
            }
            if !c.eat(b' ') {
                let after = if braces {
                    "the labels"
                } else {
                    "the metric name"
                };
                return Err(format!(
                    "expected ' ' and value after {after} of {name:?}, found {}",
                    describe(c.rest())
                ));
            }
            let token = c.take_until_space();
            if token.is_empty() {
                return Err(format!(
                    "expected value for {name:?}, found {}",
                    describe(c.rest())
                ));
            }
            let value = parse_value(token)?;
            let mut timestamp_ms = None;
            let mut exemplar = None;
            if c.eat(b' ') {
                if c.peek() != Some(b'#') {
                    let token = c.take_until_space();
                    if token.is_empty() {
                        return Err(format!(
                            "expected timestamp or exemplar after the value, found {}",
                            describe(c.rest())
                        ));
                    }
                    timestamp_ms = Some(parse_om_timestamp(token)?);
                    if c.eat(b' ') && c.peek() != Some(b'#') {
                        return Err(format!(
                            "expected \" # \" and exemplar after the timestamp, found {}",
                            describe(c.rest())
                        ));
                    }
                }
                if c.peek() == Some(b'#') {
                    exemplar = Some(parse_exemplar(&mut c)?);
                }
            }
            if !c.at_end() {
                return Err(format!(
                    "unexpected {:?} at the end of the sample (expected end of line)",
                    c.rest()
                ));
            }
            Ok(Sample {
                name,
                labels,
                value,
                timestamp_ms,
                exemplar,
            })
        }
    }
}

/// OpenMetrics `# {labels} value [timestamp]`, the cursor at the `#`.
fn parse_exemplar<'a>(c: &mut Cursor<'a>) -> Result<Exemplar<'a>, String> {
    let found = c.rest();
    if !(c.eat(b'#') && c.eat(b' ') && c.eat(b'{')) {
        return Err(format!(
            "expected \"# {{\" to start an exemplar, found {found:?}"
        ));
    }
    let mut labels = Vec::new();
    parse_labels(c, Format::OpenMetrics, &mut labels)?;
    if !c.eat(b' ') {
        return Err(format!(
            "expected ' ' and value after the exemplar labels, found {}",
            describe(c.rest())
        ));
    }
    let token = c.take_until_space();
    if token.is_empty() {
        return Err(format!(
            "expected exemplar value, found {}",
            describe(c.rest())
        ));
    }
    let value = parse_value(token)?;
    let mut timestamp_ms = None;
    if c.eat(b' ') {
        let token = c.take_until_space();
        if token.is_empty() {
            return Err(format!(
                "expected exemplar timestamp, found {}",
                describe(c.rest())
            ));
        }
        timestamp_ms = Some(parse_om_timestamp(token)?);
    }
    Ok(Exemplar {
        labels,
        value,
        timestamp_ms,
    })
}

/// Parses `label="value",…}`, the cursor just after the `{`.
fn parse_labels<'a>(
    c: &mut Cursor<'a>,
    format: Format,
    out: &mut Vec<(&'a str, Cow<'a, str>)>,
) -> Result<(), String> {
    let text = format == Format::Text;
    loop {
        if text {
            c.skip_ws();
        }
        if c.eat(b'}') {
            return match duplicate_label(out) {
                Some(name) => Err(format!("duplicate label name {name:?}")),
                None => Ok(()),
            };
        }
        let name = c.label_name();
        if name.is_empty() {
            return Err(format!(
                "expected label name or '}}', found {}",
                describe(c.rest())
            ));
        }
        if text {
            c.skip_ws();
        }
        if !c.eat(b'=') {
            return Err(format!(
                "expected '=' after label name {name:?}, found {}",
                describe(c.rest())
            ));
        }
        if text {
            c.skip_ws();
        }
        if !c.eat(b'"') {
            return Err(format!(
                "expected '\"' to start the value of label {name:?}, found {}",
                describe(c.rest())
            ));
        }
        let start = c.pos;
        let mut escaped = false;
        loop {
            match c.peek() {
                None => {
                    return Err(format!(
                        "expected closing '\"' for the value of label {name:?}, found end of line"
                    ));
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    c.pos += 1;
                    if c.peek().is_some() {
                        c.pos += 1;
                    }
                }
                Some(_) => c.pos += 1,
            }
        }
        let raw = c.slice_from(start);
        c.pos += 1; // the closing quote
        let value = if escaped {
            unescape(raw, true)
        } else {
            Cow::Borrowed(raw)
        };
        out.push((name, value));
        if text {
            c.skip_ws();
        }
        if c.eat(b',') {
            continue;
        }
        if c.eat(b'}') {
            return match duplicate_label(out) {
                Some(name) => Err(format!("duplicate label name {name:?}")),
                None => Ok(()),
            };
        }
        return Err(format!(
            "expected ',' or '}}' after the value of label {name:?}, found {}",
            describe(c.rest())
        ));
    }
}

/// The first label name that repeats an earlier one. Pairwise for the usual few labels, a
/// hash set beyond (a line with many labels must not cost quadratic time).
fn duplicate_label<'a>(labels: &[(&'a str, Cow<'a, str>)]) -> Option<&'a str> {
    if labels.len() <= 16 {
        labels.iter().enumerate().find_map(|(i, (name, _))| {
            labels
                .iter()
                .take(i)
                .any(|(n, _)| n == name)
                .then_some(*name)
        })
    } else {
        let mut seen = std::collections::HashSet::with_capacity(labels.len());
        labels
            .iter()
            .find_map(|(name, _)| (!seen.insert(*name)).then_some(*name))
    }
}

/// A position in one line. `pos` only ever stops right after an ASCII byte, at the line's
/// start or end, or inside a quoted value (never sliced there), so slices are at char
/// boundaries; `get` keeps it panic-free regardless.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn slice_from(&self, start: usize) -> &'a str {
        self.s.get(start..self.pos).unwrap_or("")
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.slice_from(start)
    }

    /// Skips spaces and tabs; returns how many.
    fn skip_ws(&mut self) -> usize {
        self.take_while(|b| b == b' ' || b == b'\t').len()
    }

    fn take_until_ws(&mut self) -> &'a str {
        self.take_while(|b| b != b' ' && b != b'\t')
    }

    fn take_until_space(&mut self) -> &'a str {
        self.take_while(|b| b != b' ')
    }

    fn metric_name(&mut self) -> &'a str {
        if !self.peek().is_some_and(is_name_start) {
            return "";
        }
        self.take_while(is_name_char)
    }

    fn label_name(&mut self) -> &'a str {
        if !self.peek().is_some_and(is_label_start) {
            return "";
        }
        self.take_while(is_label_char)
    }
}

/// A libFuzzer-style entry point: parses `data` (skipped unless UTF-8) in both formats and
/// checks the invariants of a successful parse and of an error. Returns a description of the
/// first violated invariant; a fuzz target panics on `Err`.
pub fn fuzz_one(data: &[u8]) -> Result<(), String> {
    let Ok(input) = std::str::from_utf8(data) else {
        return Ok(());
    };
    let lines = input.split('\n').count();
    for format in [Format::Text, Format::OpenMetrics] {
        match parse(input, format) {
            Ok(families) => check_families(&families, format)?,
            Err(e) => {
                if e.line == 0 || e.line > lines + 1 {
                    return Err(format!(
                        "{format:?}: error line {} out of 1..={}",
                        e.line,
                        lines + 1
                    ));
                }
                if !e
                    .message
                    .starts_with(|c: char| c.is_ascii_lowercase() || c == '#')
                {
                    return Err(format!("{format:?}: message not lowercase: {e}"));
                }
            }
        }
    }
    Ok(())
}

fn valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(|&f| is_name_start(f)) && b.iter().all(|&c| is_name_char(c))
}

fn valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(|&f| is_label_start(f)) && b.iter().all(|&c| is_label_char(c))
}

fn check_labels(labels: &[(&str, Cow<'_, str>)], what: &str) -> Result<(), String> {
    if let Some(name) = duplicate_label(labels) {
        return Err(format!("{what}: duplicate label name {name:?}"));
    }
    for (name, value) in labels {
        if !valid_label_name(name) {
            return Err(format!("{what}: invalid label name {name:?}"));
        }
        if let Cow::Borrowed(v) = value {
            if v.contains('\\') || v.contains('"') || v.contains('\n') {
                return Err(format!("{what}: borrowed label value {v:?} not unescaped"));
            }
        }
    }
    Ok(())
}

fn check_timestamp(ts: Option<i64>, what: &str) -> Result<(), String> {
    match ts {
        Some(ts) if (ts as f64).abs() >= MAX_TIMESTAMP_MS => {
            Err(format!("{what}: timestamp {ts} out of range"))
        }
        _ => Ok(()),
    }
}

fn check_families(families: &[Family<'_>], format: Format) -> Result<(), String> {
    let mut names = HashMap::new();
    for family in families {
        let fname = family.name;
        if !valid_metric_name(fname) {
            return Err(format!("{format:?}: invalid family name {fname:?}"));
        }
        if format == Format::OpenMetrics && names.insert(fname, ()).is_some() {
            return Err(format!("{format:?}: family {fname:?} returned twice"));
        }
        if format == Format::Text {
            if family.unit.is_some() {
                return Err(format!("text family {fname:?} has a unit"));
            }
            if !matches!(
                family.kind,
                MetricType::Counter
                    | MetricType::Gauge
                    | MetricType::Histogram
                    | MetricType::Summary
                    | MetricType::Unknown
            ) {
                return Err(format!("text family {fname:?} has kind {:?}", family.kind));
            }
        }
        if let Some(unit) = family.unit {
            if unit.is_empty() || !fname.ends_with(unit) {
                return Err(format!("{format:?}: family {fname:?} has unit {unit:?}"));
            }
        }
        for sample in &family.samples {
            let what = format!("{format:?} sample {:?} of {fname:?}", sample.name);
            if !sample.name.starts_with(fname) {
                return Err(format!("{what}: name does not start with the family name"));
            }
            if !valid_metric_name(sample.name) || !belongs(fname, family.kind, sample.name, format)
            {
                return Err(format!("{what}: does not belong to its family"));
            }
            check_labels(&sample.labels, &what)?;
            check_timestamp(sample.timestamp_ms, &what)?;
            if let Some(exemplar) = &sample.exemplar {
                if format == Format::Text || !exemplar_allowed(family.kind, sample.name) {
                    return Err(format!("{what}: unexpected exemplar"));
                }
                check_labels(&exemplar.labels, &what)?;
                check_timestamp(exemplar.timestamp_ms, &what)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(input: &str) -> Vec<Family<'_>> {
        match parse(input, Format::Text) {
            Ok(f) => f,
            Err(e) => panic!("text parse failed: {e}"),
        }
    }

    fn om(input: &str) -> Vec<Family<'_>> {
        match parse(input, Format::OpenMetrics) {
            Ok(f) => f,
            Err(e) => panic!("openmetrics parse failed: {e}"),
        }
    }

    fn err(input: &str, format: Format) -> ParseError {
        match parse(input, format) {
            Ok(f) => panic!("expected an error, got {f:?}"),
            Err(e) => e,
        }
    }

    fn labels<'a>(s: &'a Sample<'_>) -> Vec<(&'a str, &'a str)> {
        s.labels.iter().map(|(n, v)| (*n, v.as_ref())).collect()
    }

    fn names<'a>(families: &'a [Family<'_>]) -> Vec<(&'a str, MetricType, usize)> {
        families
            .iter()
            .map(|f| (f.name, f.kind, f.samples.len()))
            .collect()
    }

    const NODE_EXPORTER: &str = r##"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 2.48421467e+06
node_cpu_seconds_total{cpu="0",mode="iowait"} 1031.47
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 4.2101997568e+10
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.21
# HELP node_scrape_collector_success node_exporter: Whether a collector succeeded.
# TYPE node_scrape_collector_success gauge
node_scrape_collector_success{collector="cpu"} 1
node_scrape_collector_success{collector="zfs"} 0
# HELP node_uname_info Labeled system information as provided by the uname system call.
# TYPE node_uname_info gauge
node_uname_info{domainname="(none)",machine="x86_64",nodename="host-1",release="6.1.0-13-amd64",sysname="Linux",version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)"} 1
"##;

    const GO_CLIENT: &str = r##"# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.4e-05
go_gc_duration_seconds{quantile="0.25"} 3.1e-05
go_gc_duration_seconds{quantile="0.5"} 4.2e-05
go_gc_duration_seconds{quantile="0.75"} 6.1e-05
go_gc_duration_seconds{quantile="1"} 0.000198
go_gc_duration_seconds_sum 0.0123
go_gc_duration_seconds_count 231
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
# HELP go_info Information about the Go environment.
# TYPE go_info gauge
go_info{version="go1.21.3"} 1
# HELP http_request_duration_seconds A histogram of the request latencies.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/",le="0.1"} 10
http_request_duration_seconds_bucket{handler="/",le="0.5"} 15
http_request_duration_seconds_bucket{handler="/",le="+Inf"} 17
http_request_duration_seconds_sum{handler="/"} 3.25
http_request_duration_seconds_count{handler="/"} 17
# HELP promhttp_metric_handler_requests_in_flight Current number of scrapes being served.
# TYPE promhttp_metric_handler_requests_in_flight gauge
promhttp_metric_handler_requests_in_flight 1
# HELP promhttp_metric_handler_requests_total Total number of scrapes by HTTP status code.
# TYPE promhttp_metric_handler_requests_total counter
promhttp_metric_handler_requests_total{code="200"} 1234
promhttp_metric_handler_requests_total{code="500"} 0
promhttp_metric_handler_requests_total{code="503"} 0
"##;

    const PYTHON_OM: &str = r##"# HELP requests Total requests.
# TYPE requests counter
requests_total{path="/"} 5.0
requests_created{path="/"} 1.7000000001234e+09
# HELP latency_seconds Request latency.
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_bucket{le="0.1"} 1.0
latency_seconds_bucket{le="1.0"} 3.0 # {trace_id="abc"} 0.5 1700000000.123
latency_seconds_bucket{le="+Inf"} 4.0
latency_seconds_count 4.0
latency_seconds_sum 2.5
latency_seconds_created 1.7e+09
# HELP queue_size Queue size distribution.
# TYPE queue_size gaugehistogram
queue_size_bucket{le="10.0"} 2.0
queue_size_bucket{le="+Inf"} 3.0
queue_size_gcount 3.0
queue_size_gsum 14.0
# HELP build Build information.
# TYPE build info
build_info{version="1.2.3",revision="abc"} 1.0
# HELP state Current state.
# TYPE state stateset
state{state="running"} 1.0
state{state="stopped"} 0.0
# HELP rpc_duration_seconds RPC latency summary.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 0.05
rpc_duration_seconds_count 7.0
rpc_duration_seconds_sum 0.4
# HELP temp_celsius Temperature "inside" the case.
# TYPE temp_celsius gauge
# UNIT temp_celsius celsius
temp_celsius 21.5 1700000000.5
# EOF
"##;

    #[test]
    fn node_exporter_page() {
        let f = text(NODE_EXPORTER);
        assert_eq!(
            names(&f),
            vec![
                ("node_cpu_seconds_total", MetricType::Counter, 2),
                ("node_filesystem_avail_bytes", MetricType::Gauge, 1),
                ("node_load1", MetricType::Gauge, 1),
                ("node_scrape_collector_success", MetricType::Gauge, 2),
                ("node_uname_info", MetricType::Gauge, 1),
            ]
        );
        assert_eq!(
            f[0].help.as_deref(),
            Some("Seconds the CPUs spent in each mode.")
        );
        assert_eq!(f[0].unit, None);
        let s = &f[0].samples[0];
        assert_eq!(s.name, "node_cpu_seconds_total");
        assert_eq!(labels(s), vec![("cpu", "0"), ("mode", "idle")]);
        assert_eq!(s.value, 2_484_214.67);
        assert_eq!(s.timestamp_ms, None);
        assert_eq!(s.exemplar, None);
        assert_eq!(f[0].samples[1].value, 1031.47);
        assert_eq!(f[1].samples[0].value, 4.2101997568e10);
        assert_eq!(
            labels(&f[1].samples[0]),
            vec![
                ("device", "/dev/sda1"),
                ("fstype", "ext4"),
                ("mountpoint", "/")
            ]
        );
        assert_eq!(f[2].samples[0].value, 0.21);
        assert!(f[2].samples[0].labels.is_empty());
        assert_eq!(f[3].samples[1].value, 0.0);
        // a '#' inside a label value is no comment
        let uname = &f[4].samples[0];
        assert_eq!(uname.labels.len(), 6);
        assert_eq!(
            uname.labels[5],
            (
                "version",
                Cow::Borrowed("#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)")
            )
        );
        assert!(matches!(uname.labels[5].1, Cow::Borrowed(_)));
    }

    #[test]
    fn go_client_page() {
        let f = text(GO_CLIENT);
        assert_eq!(
            names(&f),
            vec![
                ("go_gc_duration_seconds", MetricType::Summary, 7),
                ("go_goroutines", MetricType::Gauge, 1),
                ("go_info", MetricType::Gauge, 1),
                ("http_request_duration_seconds", MetricType::Histogram, 5),
                (
                    "promhttp_metric_handler_requests_in_flight",
                    MetricType::Gauge,
                    1
                ),
                (
                    "promhttp_metric_handler_requests_total",
                    MetricType::Counter,
                    3
                ),
            ]
        );
        let gc = &f[0];
        assert_eq!(
            gc.help.as_deref(),
            Some("A summary of the pause duration of garbage collection cycles.")
        );
        assert_eq!(gc.samples[0].name, "go_gc_duration_seconds");
        assert_eq!(labels(&gc.samples[0]), vec![("quantile", "0")]);
        assert_eq!(gc.samples[0].value, 2.4e-5);
        assert_eq!(labels(&gc.samples[4]), vec![("quantile", "1")]);
        assert_eq!(gc.samples[4].value, 0.000198);
        assert_eq!(gc.samples[5].name, "go_gc_duration_seconds_sum");
        assert_eq!(gc.samples[5].value, 0.0123);
        assert_eq!(gc.samples[6].name, "go_gc_duration_seconds_count");
        assert_eq!(gc.samples[6].value, 231.0);
        let hist = &f[3];
        assert_eq!(hist.samples[2].name, "http_request_duration_seconds_bucket");
        assert_eq!(
            labels(&hist.samples[2]),
            vec![("handler", "/"), ("le", "+Inf")]
        );
        assert_eq!(hist.samples[3].name, "http_request_duration_seconds_sum");
        assert_eq!(hist.samples[4].name, "http_request_duration_seconds_count");
        let promhttp = &f[5];
        assert_eq!(
            promhttp.samples[0].name,
            "promhttp_metric_handler_requests_total"
        );
        assert_eq!(labels(&promhttp.samples[0]), vec![("code", "200")]);
        assert_eq!(promhttp.samples[0].value, 1234.0);
        assert_eq!(labels(&promhttp.samples[2]), vec![("code", "503")]);
        assert_eq!(promhttp.samples[2].value, 0.0);
    }

    #[test]
    fn python_openmetrics_page() {
        let f = om(PYTHON_OM);
        assert_eq!(
            names(&f),
            vec![
                ("requests", MetricType::Counter, 2),
                ("latency_seconds", MetricType::Histogram, 6),
                ("queue_size", MetricType::GaugeHistogram, 4),
                ("build", MetricType::Info, 1),
                ("state", MetricType::StateSet, 2),
                ("rpc_duration_seconds", MetricType::Summary, 3),
                ("temp_celsius", MetricType::Gauge, 1),
            ]
        );
        let req = &f[0];
        assert_eq!(req.help.as_deref(), Some("Total requests."));
        assert_eq!(req.samples[0].name, "requests_total");
        assert_eq!(labels(&req.samples[0]), vec![("path", "/")]);
        assert_eq!(req.samples[0].value, 5.0);
        assert_eq!(req.samples[1].name, "requests_created");
        assert_eq!(req.samples[1].value, 1.7000000001234e9);

        let lat = &f[1];
        assert_eq!(lat.unit, Some("seconds"));
        assert_eq!(lat.samples[1].name, "latency_seconds_bucket");
        assert_eq!(labels(&lat.samples[1]), vec![("le", "1.0")]);
        assert_eq!(lat.samples[1].value, 3.0);
        assert_eq!(lat.samples[1].timestamp_ms, None);
        assert_eq!(
            lat.samples[1].exemplar,
            Some(Exemplar {
                labels: vec![("trace_id", Cow::Borrowed("abc"))],
                value: 0.5,
                timestamp_ms: Some(1_700_000_000_123),
            })
        );
        assert_eq!(lat.samples[0].exemplar, None);
        assert_eq!(lat.samples[3].name, "latency_seconds_count");
        assert_eq!(lat.samples[4].name, "latency_seconds_sum");
        assert_eq!(lat.samples[4].value, 2.5);
        assert_eq!(lat.samples[5].name, "latency_seconds_created");
        assert_eq!(lat.samples[5].value, 1.7e9);

        let q = &f[2];
        assert_eq!(q.samples[2].name, "queue_size_gcount");
        assert_eq!(q.samples[3].name, "queue_size_gsum");
        assert_eq!(q.samples[3].value, 14.0);

        let build = &f[3];
        assert_eq!(build.samples[0].name, "build_info");
        assert_eq!(
            labels(&build.samples[0]),
            vec![("version", "1.2.3"), ("revision", "abc")]
        );

        let state = &f[4];
        assert_eq!(labels(&state.samples[0]), vec![("state", "running")]);
        assert_eq!(state.samples[0].value, 1.0);
        assert_eq!(state.samples[1].value, 0.0);

        let rpc = &f[5];
        assert_eq!(rpc.samples[0].name, "rpc_duration_seconds");
        assert_eq!(rpc.samples[1].name, "rpc_duration_seconds_count");

        let temp = &f[6];
        assert_eq!(
            temp.help.as_deref(),
            Some("Temperature \"inside\" the case.")
        );
        assert_eq!(temp.unit, Some("celsius"));
        assert_eq!(temp.samples[0].value, 21.5);
        assert_eq!(temp.samples[0].timestamp_ms, Some(1_700_000_000_500));
    }

    #[test]
    fn content_type() {
        assert_eq!(Format::from_content_type(None), Format::Text);
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4; charset=utf-8")),
            Format::Text
        );
        assert_eq!(
            Format::from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some(" Application/OpenMetrics-Text;version=0.0.1")),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_content_type(Some("")), Format::Text);
        assert_eq!(
            Format::from_content_type(Some("application/json")),
            Format::Text
        );
    }

    #[test]
    fn text_escapes() {
        let input = "# HELP m A \\\\ backslash,\\na newline, \\\"kept\\\" and \\t kept\n\
                     # TYPE m gauge\n\
                     m{path=\"C:\\\\dir\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\",other=\"x\\ty\",plain=\"ok\"} 1\n";
        let f = text(input);
        assert_eq!(
            f[0].help.as_deref(),
            Some("A \\ backslash,\na newline, \\\"kept\\\" and \\t kept")
        );
        let s = &f[0].samples[0];
        assert_eq!(
            labels(s),
            vec![
                ("path", "C:\\dir"),
                ("quote", "say \"hi\""),
                ("nl", "a\nb"),
                ("other", "x\\ty"),
                ("plain", "ok"),
            ]
        );
        assert!(matches!(s.labels[0].1, Cow::Owned(_)));
        assert!(matches!(s.labels[4].1, Cow::Borrowed(_)));
    }

    #[test]
    fn openmetrics_escapes() {
        let input =
            "# HELP m say \\\"hi\\\"\\n\\\\\n# TYPE m gauge\nm{a=\"\\\"\\\\\\n\"} 1\n# EOF\n";
        let f = om(input);
        assert_eq!(f[0].help.as_deref(), Some("say \"hi\"\n\\"));
        assert_eq!(labels(&f[0].samples[0]), vec![("a", "\"\\\n")]);
    }

    #[test]
    fn text_whitespace_crlf_trailing_comma_timestamp() {
        let input = "# TYPE a counter\r\n# HELP a Help\twith tab \r\n\
                     a{x=\"1\",} 1 1700000000000\r\n\
                     \ta { x = \"2\" , y=\"3\" , }\t2\t-5 \r\n\
                     a{x=\"4\"}3\n\
                     \n   \n\t\n\
                     # a plain comment\n#HELP not meta\n# UNIT a ignored\n\
                     b +Inf\nc -Inf\nd NaN\ne Inf\nf 1e3\ng -0.5e-3";
        let f = text(input);
        assert_eq!(f[0].name, "a");
        assert_eq!(f[0].kind, MetricType::Counter);
        // one separator is dropped, the rest (incl. a trailing space) is kept
        assert_eq!(f[0].help.as_deref(), Some("Help\twith tab "));
        assert_eq!(f[0].samples.len(), 3);
        assert_eq!(labels(&f[0].samples[0]), vec![("x", "1")]);
        assert_eq!(f[0].samples[0].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(labels(&f[0].samples[1]), vec![("x", "2"), ("y", "3")]);
        assert_eq!(f[0].samples[1].value, 2.0);
        assert_eq!(f[0].samples[1].timestamp_ms, Some(-5));
        assert_eq!(f[0].samples[2].value, 3.0);
        let vals: Vec<(&str, f64)> = f[1..]
            .iter()
            .map(|f| (f.name, f.samples[0].value))
            .collect();
        assert_eq!(vals[0], ("b", f64::INFINITY));
        assert_eq!(vals[1], ("c", f64::NEG_INFINITY));
        assert_eq!(vals[2].0, "d");
        assert!(vals[2].1.is_nan());
        assert_eq!(vals[3], ("e", f64::INFINITY));
        assert_eq!(vals[4], ("f", 1000.0));
        assert_eq!(vals[5], ("g", -0.0005));
        assert!(f[1..].iter().all(|f| f.kind == MetricType::Unknown));
    }

    #[test]
    fn text_grouping() {
        // HELP after TYPE; untyped samples; an interleaved family starts a new entry; TYPE
        // after a family's samples starts a new entry; a sample with a foreign suffix starts
        // an untyped family; metadata without samples is kept.
        let input =
            "# TYPE h histogram\n# HELP h hist\nh_bucket{le=\"1\"} 1\nh_count 1\nh_sum 0.5\n\
                     h_created 3\nh 9\n\
                     up 1\nup{job=\"x\"} 0\n\
                     # TYPE up gauge\nup 1\n\
                     # HELP lonely nobody\n\
                     # TYPE c counter\nc 1\nc_total 2\n\
                     # TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\ns_bucket 4\n";
        let f = text(input);
        assert_eq!(
            names(&f),
            vec![
                ("h", MetricType::Histogram, 3),
                ("h_created", MetricType::Unknown, 1),
                ("h", MetricType::Unknown, 1),
                ("up", MetricType::Unknown, 2),
                ("up", MetricType::Gauge, 1),
                ("lonely", MetricType::Unknown, 0),
                ("c", MetricType::Counter, 1),
                ("c_total", MetricType::Unknown, 1),
                ("s", MetricType::Summary, 3),
                ("s_bucket", MetricType::Unknown, 1),
            ]
        );
        assert_eq!(f[0].help.as_deref(), Some("hist"));
        assert_eq!(f[5].help.as_deref(), Some("nobody"));
        assert_eq!(f[2].help, None);
        assert_eq!(text(""), vec![]);
        assert_eq!(text("\n\n   \n"), vec![]);
        assert_eq!(text("# just a comment"), vec![]);
        // empty HELP
        assert_eq!(text("# HELP x\nx 1\n")[0].help.as_deref(), Some(""));
    }

    #[test]
    fn openmetrics_grouping_and_timestamps() {
        let input = "# TYPE foo counter\n# HELP foo h\nfoo_total 1 1.5 # {} 2\nfoo_created 0\n\
                     bar 1 -2.0005\n\
                     # TYPE i info\ni_info{a=\"b\"} 1\n\
                     # TYPE u unknown\nu 1\n\
                     # TYPE g gauge\n# UNIT g_bytes bytes\ng_bytes 7 1e3\n\
                     # TYPE e counter\n# UNIT e \ne_total 0 # {a=\"1\",b=\"2\",} 1 1700000000.0005\n\
                     # EOF";
        let f = om(input);
        assert_eq!(
            names(&f),
            vec![
                ("foo", MetricType::Counter, 2),
                ("bar", MetricType::Unknown, 1),
                ("i", MetricType::Info, 1),
                ("u", MetricType::Unknown, 1),
                ("g", MetricType::Gauge, 0),
                ("g_bytes", MetricType::Unknown, 1),
                ("e", MetricType::Counter, 1),
            ]
        );
        let s = &f[0].samples[0];
        assert_eq!(s.timestamp_ms, Some(1500));
        assert_eq!(
            s.exemplar,
            Some(Exemplar {
                labels: vec![],
                value: 2.0,
                timestamp_ms: None
            })
        );
        assert_eq!(f[1].samples[0].timestamp_ms, Some(-2001));
        assert_eq!(f[5].unit, Some("bytes"));
        assert_eq!(f[5].samples[0].timestamp_ms, Some(1_000_000));
        assert_eq!(f[6].unit, None);
        let ex = f[6].samples[0].exemplar.as_ref();
        assert_eq!(ex.map(|e| e.labels.len()), Some(2));
        assert_eq!(ex.and_then(|e| e.timestamp_ms), Some(1_700_000_000_001));
        // `# EOF` with CRLF, and with no final newline
        assert_eq!(om("a 1\r\n# EOF\r\n").len(), 1);
        assert_eq!(om("# EOF"), vec![]);
    }

    #[test]
    fn errors_with_line_numbers() {
        let cases: &[(&str, Format, usize, &str)] = &[
            (
                "# HELP a x\n# TYPE a counter\na 1\na 2\n\n# c\na{code 3} 1\n",
                Format::Text,
                7,
                "expected '=' after label name \"code\", found '3'",
            ),
            (
                "a 1\nb 2\nc abc\n",
                Format::Text,
                3,
                "invalid value \"abc\"",
            ),
            (
                "a 1\nb 1\nc 1\nd 1\ne 1\nf 1\ng 1\n# EOF\nh 1\n",
                Format::OpenMetrics,
                9,
                "unexpected content after # EOF",
            ),
            (
                "a 1\n# EOF\n\n",
                Format::OpenMetrics,
                3,
                "unexpected content after # EOF",
            ),
            (
                "a 1\n",
                Format::OpenMetrics,
                2,
                "expected \"# EOF\" at the end of the input",
            ),
            (
                "",
                Format::OpenMetrics,
                1,
                "expected \"# EOF\" at the end of the input",
            ),
            (
                "# TYPE a counter\n# TYPE a gauge\na 1\n",
                Format::Text,
                2,
                "duplicate # TYPE line for metric family \"a\"",
            ),
            (
                "# HELP a x\n# TYPE a gauge\n# HELP a y\n# EOF\n",
                Format::OpenMetrics,
                3,
                "duplicate # HELP line for metric family \"a\"",
            ),
            (
                "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n# EOF\n",
                Format::OpenMetrics,
                5,
                "metric family \"a\" appears twice (expected all its lines together)",
            ),
            (
                "# TYPE a counter\na_total 1\nb 1\na_total 2\n# EOF\n",
                Format::OpenMetrics,
                4,
                "metric family \"a\" appears twice (expected all its lines together)",
            ),
            (
                "x 1\ny 1\nx 2\n# EOF\n",
                Format::OpenMetrics,
                3,
                "metric family \"x\" appears twice (expected all its lines together)",
            ),
            (
                "a 1\n# TYPE a gauge\n# EOF\n",
                Format::OpenMetrics,
                2,
                "# TYPE for metric family \"a\" after its samples (expected metadata before the samples)",
            ),
            (
                "# TYPE a bogus\n",
                Format::Text,
                1,
                "invalid metric type \"bogus\" for \"a\" (expected counter, gauge, histogram, summary or untyped)",
            ),
            (
                "# TYPE a info\n",
                Format::Text,
                1,
                "invalid metric type \"info\" for \"a\" (expected counter, gauge, histogram, summary or untyped)",
            ),
            (
                "# TYPE a untyped\n# EOF\n",
                Format::OpenMetrics,
                1,
                "invalid metric type \"untyped\" for \"a\" (expected counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown)",
            ),
            (
                "# TYPE a\n",
                Format::Text,
                1,
                "expected metric type after # TYPE a (counter, gauge, histogram, summary or untyped)",
            ),
            (
                "# TYPE a  \n",
                Format::Text,
                1,
                "expected metric type after # TYPE a (counter, gauge, histogram, summary or untyped)",
            ),
            (
                "# HELP  \n",
                Format::Text,
                1,
                "expected metric name after # HELP, found end of line",
            ),
            (
                "a{b=\"c\"} 1 # {t=\"x\"} 1\n",
                Format::Text,
                1,
                "unexpected '#' after the value (the text format has no exemplars or trailing comments)",
            ),
            (
                "# TYPE g gauge\ng 1 # {t=\"x\"} 1\n# EOF\n",
                Format::OpenMetrics,
                2,
                "unexpected exemplar on \"g\" (a gauge sample): exemplars are only allowed on counter _total and histogram _bucket samples",
            ),
            (
                "# TYPE h histogram\nh_count 1 # {t=\"x\"} 1\n# EOF\n",
                Format::OpenMetrics,
                2,
                "unexpected exemplar on \"h_count\" (a histogram sample): exemplars are only allowed on counter _total and histogram _bucket samples",
            ),
            (
                "a 1\n\nb 1\n# EOF\n",
                Format::OpenMetrics,
                2,
                "expected a sample or a '#' line, found an empty line (not allowed in openmetrics)",
            ),
            (
                "# a comment\n# EOF\n",
                Format::OpenMetrics,
                1,
                "expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\" (openmetrics allows no other comments)",
            ),
            (
                "# TYPE a_seconds gauge\n# UNIT a_seconds bytes\n# EOF\n",
                Format::OpenMetrics,
                2,
                "unit \"bytes\" is not a suffix of metric name \"a_seconds\" (expected the name to end with \"_bytes\")",
            ),
            (
                "a{b=\"1\",b=\"2\"} 1\n",
                Format::Text,
                1,
                "duplicate label name \"b\"",
            ),
            (
                "a{b=\"1\nb 1\n",
                Format::Text,
                1,
                "expected closing '\"' for the value of label \"b\", found end of line",
            ),
            ("{\n", Format::Text, 1, "expected metric name, found '{'"),
            (
                "a{\n",
                Format::Text,
                1,
                "expected label name or '}', found end of line",
            ),
            (
                "a{1=\"x\"} 1\n",
                Format::Text,
                1,
                "expected label name or '}', found '1'",
            ),
            (
                "a{b=c} 1\n",
                Format::Text,
                1,
                "expected '\"' to start the value of label \"b\", found 'c'",
            ),
            (
                "a{b=\"c\" d=\"e\"} 1\n",
                Format::Text,
                1,
                "expected ',' or '}' after the value of label \"b\", found 'd'",
            ),
            (
                "a\n",
                Format::Text,
                1,
                "expected value for \"a\", found end of line",
            ),
            (
                "a{} \n",
                Format::Text,
                1,
                "expected value for \"a\", found end of line",
            ),
            ("ä 1\n", Format::Text, 1, "expected metric name, found 'ä'"),
            (
                "aé 1\n",
                Format::Text,
                1,
                "invalid character 'é' after metric name \"a\" (expected '{', whitespace or value)",
            ),
            (
                "a 1e400\n",
                Format::Text,
                1,
                "value \"1e400\" is out of range",
            ),
            ("a 0x10\n", Format::Text, 1, "invalid value \"0x10\""),
            (
                "a 1 1.5\n",
                Format::Text,
                1,
                "invalid timestamp \"1.5\" (expected integer milliseconds)",
            ),
            (
                "a 1 99999999999999999999\n",
                Format::Text,
                1,
                "timestamp \"99999999999999999999\" is out of range",
            ),
            (
                "a 1 2 3\n",
                Format::Text,
                1,
                "unexpected \"3\" after the timestamp (expected end of line)",
            ),
            (
                "a 1 1e300\n# EOF\n",
                Format::OpenMetrics,
                1,
                "timestamp \"1e300\" is out of range",
            ),
            (
                "a 1 NaN\n# EOF\n",
                Format::OpenMetrics,
                1,
                "timestamp \"NaN\" is out of range",
            ),
            (
                "a 1 x\n# EOF\n",
                Format::OpenMetrics,
                1,
                "invalid timestamp \"x\" (expected float seconds)",
            ),
            (
                "a  1\n# EOF\n",
                Format::OpenMetrics,
                1,
                "expected value for \"a\", found ' '",
            ),
            (
                "a 1 \n# EOF\n",
                Format::OpenMetrics,
                1,
                "expected timestamp or exemplar after the value, found end of line",
            ),
            (
                "a\t1\n# EOF\n",
                Format::OpenMetrics,
                1,
                "expected ' ' and value after the metric name of \"a\", found '\\t'",
            ),
            (
                "a{b=\"c\"}1\n# EOF\n",
                Format::OpenMetrics,
                1,
                "expected ' ' and value after the labels of \"a\", found '1'",
            ),
            (
                "a{b = \"c\"} 1\n# EOF\n",
                Format::OpenMetrics,
                1,
                "expected '=' after label name \"b\", found ' '",
            ),
            (
                "# TYPE a counter\na_total 1 2 3\n# EOF\n",
                Format::OpenMetrics,
                2,
                "expected \" # \" and exemplar after the timestamp, found '3'",
            ),
            (
                "# TYPE a counter\na_total 1 #{x=\"y\"} 1\n# EOF\n",
                Format::OpenMetrics,
                2,
                "expected \"# {\" to start an exemplar, found \"#{x=\\\"y\\\"} 1\"",
            ),
            (
                "# TYPE a counter\na_total 1 # {x=\"y\"}\n# EOF\n",
                Format::OpenMetrics,
                2,
                "expected ' ' and value after the exemplar labels, found end of line",
            ),
            (
                "# TYPE a counter\na_total 1 # {x=\"y\"} 1 2 3\n# EOF\n",
                Format::OpenMetrics,
                2,
                "unexpected \" 3\" at the end of the sample (expected end of line)",
            ),
            (
                "# TYPE a counter\na_total 1 # {x=\"y\"} 1 \n# EOF\n",
                Format::OpenMetrics,
                2,
                "expected exemplar timestamp, found end of line",
            ),
            (
                "# HELP\n# EOF\n",
                Format::OpenMetrics,
                1,
                "expected ' ' and metric name after # HELP",
            ),
            (
                "# HELP a\tb\n# EOF\n",
                Format::OpenMetrics,
                1,
                "expected ' ' after metric name \"a\" in # HELP, found '\\t'",
            ),
            (
                " a 1\n# EOF\n",
                Format::OpenMetrics,
                1,
                "expected metric name, found ' '",
            ),
            (
                "# TYPE a counter\na_total 1\n# EOF \n",
                Format::OpenMetrics,
                3,
                "expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\" (openmetrics allows no other comments)",
            ),
        ];
        for (input, format, line, message) in cases {
            let e = err(input, *format);
            assert_eq!(
                (e.line, e.message.as_str()),
                (*line, *message),
                "input {input:?} ({format:?})"
            );
        }
        let e = err("a 1\nb{code 3} 1\n", Format::Text);
        assert_eq!(
            e.to_string(),
            "line 2: expected '=' after label name \"code\", found '3'"
        );
    }

    #[test]
    fn text_tolerates_what_openmetrics_rejects() {
        // interleaving, blank lines, comments, no # EOF, TYPE after samples
        let f = text("x 1\ny 1\nx 2\n\n# c\n# EOF\nx 3\n# TYPE x gauge\nx 4\n");
        assert_eq!(
            names(&f),
            vec![
                ("x", MetricType::Unknown, 1),
                ("y", MetricType::Unknown, 1),
                ("x", MetricType::Unknown, 2),
                ("x", MetricType::Gauge, 1),
            ]
        );
    }

    #[test]
    fn multibyte_and_odd_input_never_panics() {
        let f = text("m{a=\"héllo wörld ✓ 🦀\",b=\"\\é\"} 1\n");
        assert_eq!(
            labels(&f[0].samples[0]),
            vec![("a", "héllo wörld ✓ 🦀"), ("b", "\\é")]
        );
        let f = om("# HELP m ünïcode ✓\nm{a=\"🦀\"} 1\n# EOF\n");
        assert_eq!(f[0].help.as_deref(), Some("ünïcode ✓"));
        for input in [
            "",
            "{",
            "}",
            "#",
            "# ",
            "# HELP",
            "# HELP ",
            "# TYPE ",
            "# UNIT",
            "# EOF",
            "a{",
            "a{b",
            "a{b=",
            "a{b=\"",
            "a{b=\"\\",
            "a{b=\"\\\"",
            "a{b=\"é",
            "a{b=\"é\"",
            "a{b=\"\"}",
            "a{b=\"\"} ",
            "a 1 #",
            "a 1 # ",
            "a 1 # {",
            "a 1 # {}",
            "a 1 # {} ",
            "a 1 # {} 1 ",
            "   ",
            "\t",
            "\r",
            "\r\n",
            "\n\r",
            "é",
            "a é",
            "a 1 é",
            "a{é=\"x\"} 1",
            "a 1e999999999999999999",
            "a 99999999999999999999999999999999999999999",
            "a 1 -99999999999999999999",
            "a 1 1e18",
            "a 1 -1e16",
            "\u{feff}a 1",
            "a\u{0}1",
        ] {
            let _ = parse(input, Format::Text);
            let _ = parse(input, Format::OpenMetrics);
            assert_eq!(fuzz_one(input.as_bytes()), Ok(()), "input {input:?}");
        }
        assert_eq!(fuzz_one(&[0xff, 0xfe, b'a']), Ok(()));
    }

    #[test]
    fn every_prefix_parses_or_errors_without_panic() {
        for page in [NODE_EXPORTER, GO_CLIENT, PYTHON_OM] {
            for (i, _) in page.char_indices().chain([(page.len(), ' ')]) {
                let prefix = page.get(..i).unwrap_or("");
                let _ = parse(prefix, Format::Text);
                let _ = parse(prefix, Format::OpenMetrics);
                assert_eq!(fuzz_one(prefix.as_bytes()), Ok(()), "prefix {prefix:?}");
            }
        }
        // every complete-line prefix of the text pages parses
        for page in [NODE_EXPORTER, GO_CLIENT] {
            for (i, _) in page.match_indices('\n') {
                assert!(parse(&page[..=i], Format::Text).is_ok());
            }
        }
    }

    #[test]
    fn mutated_pages_keep_invariants() {
        // A small deterministic mutation fuzzer over the sample pages.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: &[u8] = b" \t\n\r{}=\",#\\_:aZ09.+-eEInfNa_total_bucket";
        for page in [NODE_EXPORTER, GO_CLIENT, PYTHON_OM] {
            for _ in 0..1500 {
                let mut bytes = page.as_bytes().to_vec();
                for _ in 0..(1 + next() % 4) {
                    let at = (next() as usize) % (bytes.len() + 1);
                    let b = alphabet[(next() as usize) % alphabet.len()];
                    match next() % 3 {
                        0 if at < bytes.len() => bytes[at] = b,
                        1 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => bytes.insert(at, b),
                    }
                }
                assert_eq!(
                    fuzz_one(&bytes),
                    Ok(()),
                    "input {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }

    #[test]
    fn large_scrape_and_many_labels() {
        let mut page = String::from("# TYPE http_requests_total counter\n");
        for i in 0..100_000 {
            page.push_str(&format!(
                "http_requests_total{{method=\"GET\",code=\"200\",instance=\"i{i}\"}} {i}\n"
            ));
        }
        let f = text(&page);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].samples.len(), 100_000);
        assert_eq!(labels(&f[0].samples[99_999])[2], ("instance", "i99999"));
        assert_eq!(f[0].samples[99_999].value, 99_999.0);

        let many: Vec<String> = (0..50_000).map(|i| format!("l{i}=\"v\"")).collect();
        let line = format!("m{{{}}} 1\n", many.join(","));
        assert_eq!(text(&line)[0].samples[0].labels.len(), 50_000);
        let dup = format!("m{{{},l7=\"again\"}} 1\n", many.join(","));
        assert_eq!(
            err(&dup, Format::Text).message,
            "duplicate label name \"l7\""
        );
        let small_dup = "m{a=\"1\",b=\"2\",c=\"3\",b=\"4\"} 1\n# EOF\n";
        assert_eq!(
            err(small_dup, Format::OpenMetrics).message,
            "duplicate label name \"b\""
        );
    }

    #[test]
    fn sample_pages_satisfy_invariants() {
        for page in [NODE_EXPORTER, GO_CLIENT, PYTHON_OM] {
            assert_eq!(fuzz_one(page.as_bytes()), Ok(()));
        }
        assert_eq!(check_families(&text(GO_CLIENT), Format::Text), Ok(()));
        assert_eq!(check_families(&om(PYTHON_OM), Format::OpenMetrics), Ok(()));
    }
}
