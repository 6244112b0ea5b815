//! `include` / `exclude` for `attributes`: the config (`match_type: strict | regexp` on
//! services, span and metric names, log severity, attributes and resources), compiled once into
//! a [`Matcher`] that tells whether an item is selected.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::component::Diagnostics;
use crate::data::attributes::AttrsRead;
use crate::processors::actions::any_to_string;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    #[default]
    Strict,
    Regexp,
}

/// `{key, value}` in `attributes` / `resources` matching.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueMatch {
    pub key: String,
    /// When absent, the key only has to be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_norway::Value>,
}

/// `log_severity_number`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityMatch {
    /// Lowest severity number that matches (1–24, or a name: TRACE, DEBUG, INFO, WARN, ERROR, FATAL).
    pub min: serde_norway::Value,
    /// Whether records without a severity (0) match.
    #[serde(default)]
    pub match_undefined: bool,
}

/// `include` / `exclude`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    pub match_type: MatchType,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub span_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metric_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_severity_number: Option<SeverityMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<KeyValueMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<KeyValueMatch>,
}

#[derive(Debug, Clone)]
enum StrMatch {
    Exact(String),
    Re(Regex),
}

impl StrMatch {
    fn matches(&self, s: &str) -> bool {
        match self {
            StrMatch::Exact(e) => e == s,
            StrMatch::Re(r) => r.is_match(s),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Matcher {
    services: Vec<StrMatch>,
    span_names: Vec<StrMatch>,
    metric_names: Vec<StrMatch>,
    severity: Option<(i32, bool)>,
    attributes: Vec<(String, Option<StrMatch>)>,
    resources: Vec<(String, Option<StrMatch>)>,
}

fn severity_number(v: &serde_norway::Value) -> Option<i32> {
    if let Some(n) = v.as_i64() {
        return (1..=24).contains(&n).then_some(n as i32);
    }
    match v.as_str()?.to_ascii_uppercase().as_str() {
        "TRACE" => Some(1),
        "DEBUG" => Some(5),
        "INFO" => Some(9),
        "WARN" => Some(13),
        "ERROR" => Some(17),
        "FATAL" => Some(21),
        _ => None,
    }
}

impl MatchConfig {
    pub(super) fn compile(&self, path: &str, diag: &mut Diagnostics) -> Matcher {
        let mut m = Matcher::default();
        let compile_list = |list: &[String], key: &str, diag: &mut Diagnostics| -> Vec<StrMatch> {
            list.iter()
                .enumerate()
                .filter_map(|(i, s)| match self.match_type {
                    MatchType::Strict => Some(StrMatch::Exact(s.clone())),
                    MatchType::Regexp => match Regex::new(s) {
                        Ok(r) => Some(StrMatch::Re(r)),
                        Err(e) => {
                            diag.error(
                                format!("{path}.{key}[{i}]"),
                                format!("invalid regular expression: {e}"),
                            );
                            None
                        }
                    },
                })
                .collect()
        };
        m.services = compile_list(&self.services, "services", diag);
        m.span_names = compile_list(&self.span_names, "span_names", diag);
        m.metric_names = compile_list(&self.metric_names, "metric_names", diag);
        let kv_list = |list: &[KeyValueMatch], key: &str, diag: &mut Diagnostics| {
            list.iter()
                .enumerate()
                .map(|(i, kv)| {
                    let value = kv.value.as_ref().and_then(|v| {
                        let text = match v {
                            serde_norway::Value::String(s) => s.clone(),
                            other => serde_norway::to_string(other)
                                .unwrap_or_default()
                                .trim()
                                .to_string(),
                        };
                        match self.match_type {
                            MatchType::Strict => Some(StrMatch::Exact(text)),
                            MatchType::Regexp => match Regex::new(&text) {
                                Ok(r) => Some(StrMatch::Re(r)),
                                Err(e) => {
                                    diag.error(
                                        format!("{path}.{key}[{i}].value"),
                                        format!("invalid regular expression: {e}"),
                                    );
                                    None
                                }
                            },
                        }
                    });
                    (kv.key.clone(), value)
                })
                .collect()
        };
        m.attributes = kv_list(&self.attributes, "attributes", diag);
        m.resources = kv_list(&self.resources, "resources", diag);
        if let Some(s) = &self.log_severity_number {
            match severity_number(&s.min) {
                Some(n) => m.severity = Some((n, s.match_undefined)),
                None => diag.error(
                    format!("{path}.log_severity_number.min"),
                    "use 1-24 or TRACE, DEBUG, INFO, WARN, ERROR, FATAL",
                ),
            }
        }
        m
    }
}

fn attr_str<A: AttrsRead + ?Sized>(attrs: &A, key: &str) -> Option<String> {
    let i = attrs.position(key)?;
    Some(
        attrs
            .value_at(i)
            .map(|v| any_to_string(&v))
            .unwrap_or_default(),
    )
}

fn kv_matches<A: AttrsRead + ?Sized>(list: &[(String, Option<StrMatch>)], attrs: &A) -> bool {
    list.iter().any(|(k, v)| match attr_str(attrs, k) {
        Some(actual) => v.as_ref().is_none_or(|m| m.matches(&actual)),
        None => false,
    })
}

/// What an item offers to matching (its own attributes are passed beside it).
pub(super) struct Subject<'a> {
    pub(super) resource: &'a [KeyValue],
    pub(super) span_name: Option<&'a str>,
    pub(super) metric_name: Option<&'a str>,
    pub(super) severity: Option<i32>,
}

impl Matcher {
    /// True when matching reads the resource (`services`, `resources`).
    pub(super) fn reads_resource(&self) -> bool {
        !self.services.is_empty() || !self.resources.is_empty()
    }

    /// True when every property given (and applicable to this item) matches.
    pub(super) fn matches<A: AttrsRead + ?Sized>(&self, s: &Subject, attributes: &A) -> bool {
        if !self.services.is_empty() {
            let svc = attr_str(s.resource, "service.name").unwrap_or_default();
            if !self.services.iter().any(|m| m.matches(&svc)) {
                return false;
            }
        }
        if let (false, Some(name)) = (self.span_names.is_empty(), s.span_name) {
            if !self.span_names.iter().any(|m| m.matches(name)) {
                return false;
            }
        }
        if let (false, Some(name)) = (self.metric_names.is_empty(), s.metric_name) {
            if !self.metric_names.iter().any(|m| m.matches(name)) {
                return false;
            }
        }
        if let (Some((min, undefined)), Some(sev)) = (self.severity, s.severity) {
            let ok = if sev == 0 { undefined } else { sev >= min };
            if !ok {
                return false;
            }
        }
        if !self.attributes.is_empty() && !kv_matches(&self.attributes, attributes) {
            return false;
        }
        if !self.resources.is_empty() && !kv_matches(&self.resources, s.resource) {
            return false;
        }
        true
    }
}
