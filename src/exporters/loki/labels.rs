//! Label rules: valid Loki label names, severity → `level`, value truncation with the
//! `…[truncated]` marker, and the stream selector syntax (`{a="b", c="d"}`) both ways.

use std::collections::BTreeMap;

pub(super) fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Severity number → Loki `level`.
pub fn level(severity_number: i32, severity_text: &str) -> &'static str {
    match severity_number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => match severity_text.to_ascii_lowercase().as_str() {
            "trace" => "trace",
            "debug" => "debug",
            "info" | "information" => "info",
            "warn" | "warning" => "warn",
            "error" => "error",
            "fatal" | "critical" => "fatal",
            _ => "unknown",
        },
    }
}

pub(super) const TRUNCATED: &str = "…[truncated]";

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max.saturating_sub(TRUNCATED.len());
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{TRUNCATED}", &s[..cut])
}

/// A stream's labels in selector syntax, sorted by name.
pub fn selector(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push_str("=\"");
        crate::telemetry::metrics::escape_label_value(&mut out, v);
        out.push('"');
    }
    out.push('}');
    out
}

/// Parses a selector we produced (`{a="b", c="d"}`) back into pairs.
pub fn parse_selector(s: &str) -> Option<BTreeMap<String, String>> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out = BTreeMap::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=') {
            name.push(c);
        }
        chars.next();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(name.trim().to_string(), value);
    }
}
