//! `attributes`: edits span, log record and data point attributes with the action engine it
//! shares with `resource` ([`super::actions`], where the actions — insert, update, upsert,
//! delete, hash, extract, convert — and their value sources are described). Keys, defaults and
//! semantics are the Collector's.
//!
//! `attributes` also takes `include` / `exclude` (`match_type: strict | regexp`) on `services`
//! (resource `service.name`), `span_names`, `metric_names`, `log_severity_number`
//! (`{min, match_undefined}`), `attributes` and `resources` (`[{key, value}]`). An item is edited
//! when it matches `include` (every property given matches; within a property, any entry) and
//! does not match `exclude`. A property that does not apply to the signal (`span_names` on logs)
//! is ignored for that signal.
//!
//! The include / exclude matching is in [`matching`].

mod matching;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use serde::{Deserialize, Serialize};

use super::{Processor, Reads, Rejections};
use crate::component::Diagnostics;
use crate::data::attributes::AttrsRead;
use crate::data::{RequestMeta, Telemetry};
use crate::wire::ItemEdit;
use matching::{Matcher, Subject};

pub use super::actions::{apply, compile_all, Action, ActionConfig, ActionType};
pub use matching::{KeyValueMatch, MatchConfig, MatchType, SeverityMatch};

/// `processors.attributes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributesConfig {
    /// Only edit items that match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include: Option<MatchConfig>,
    /// Never edit items that match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<MatchConfig>,
    /// The edits, in order.
    pub actions: Vec<ActionConfig>,
}

impl AttributesConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        let _ = self.compile(path, diag);
    }

    fn compile(&self, path: &str, diag: &mut Diagnostics) -> AttributesProcessor {
        if self.actions.is_empty() {
            diag.error(format!("{path}.actions"), "at least one action is required");
        }
        AttributesProcessor {
            actions: Arc::new(compile_all(&self.actions, &format!("{path}.actions"), diag)),
            include: self
                .include
                .as_ref()
                .map(|m| m.compile(&format!("{path}.include"), diag)),
            exclude: self
                .exclude
                .as_ref()
                .map(|m| m.compile(&format!("{path}.exclude"), diag)),
        }
    }

    /// Builds the processor (the config was validated, so compiling cannot fail here).
    pub fn build(&self) -> AttributesProcessor {
        self.compile("", &mut Diagnostics::default())
    }
}

/// The running `attributes` processor.
pub struct AttributesProcessor {
    actions: Arc<Vec<Action>>,
    include: Option<Matcher>,
    exclude: Option<Matcher>,
}

impl AttributesProcessor {
    /// Whether an item is edited: it matches `include` (when given) and not `exclude`.
    fn selects<A: AttrsRead + ?Sized>(&self, s: &Subject<'_>, attrs: &A) -> bool {
        self.include.as_ref().is_none_or(|m| m.matches(s, attrs))
            && !self.exclude.as_ref().is_some_and(|m| m.matches(s, attrs))
    }

    /// Decides (borrowing immutably) and then edits, so matching needs no copy.
    fn edit(&self, attrs: &mut Vec<KeyValue>, s: Subject<'_>, meta: &RequestMeta) {
        if self.selects(&s, attrs) {
            apply(&self.actions, attrs, meta);
        }
    }

    fn reads_resource(&self) -> bool {
        [&self.include, &self.exclude]
            .into_iter()
            .flatten()
            .any(Matcher::reads_resource)
    }
}

impl Processor for AttributesProcessor {
    fn reads(&self) -> Reads {
        Reads::Items
    }

    /// The same decision and edits as [`Processor::process`], on the encoded item: the
    /// resource is decoded only when matching reads it, once per resource group.
    fn edit_item(&self, item: &mut ItemEdit<'_, '_>, meta: &RequestMeta) {
        if self.include.is_some() || self.exclude.is_some() {
            let v = &item.view;
            let s = Subject {
                resource: if self.reads_resource() {
                    &v.resource().attributes
                } else {
                    &[]
                },
                span_name: v.span_name(),
                metric_name: v.metric_name(),
                severity: v.severity_number(),
            };
            if !self.selects(&s, &*item.attributes) {
                return;
            }
        }
        apply(&self.actions, item.attributes, meta);
    }

    fn process(&self, data: &mut Telemetry, meta: &RequestMeta, _rejected: &mut Rejections) {
        let subject = |resource, span_name, metric_name, severity| Subject {
            resource,
            span_name,
            metric_name,
            severity,
        };
        match data {
            Telemetry::Traces(r) => {
                for rs in &mut r.resource_spans {
                    let res = rs
                        .resource
                        .as_ref()
                        .map(|r| r.attributes.as_slice())
                        .unwrap_or(&[]);
                    for ss in &mut rs.scope_spans {
                        for span in &mut ss.spans {
                            let s = subject(res, Some(span.name.as_str()), None, None);
                            self.edit(&mut span.attributes, s, meta);
                        }
                    }
                }
            }
            Telemetry::Logs(r) => {
                for rl in &mut r.resource_logs {
                    let res = rl
                        .resource
                        .as_ref()
                        .map(|r| r.attributes.as_slice())
                        .unwrap_or(&[]);
                    for sl in &mut rl.scope_logs {
                        for rec in &mut sl.log_records {
                            let s = subject(res, None, None, Some(rec.severity_number));
                            self.edit(&mut rec.attributes, s, meta);
                        }
                    }
                }
            }
            Telemetry::Metrics(r) => {
                for rm in &mut r.resource_metrics {
                    let res = rm
                        .resource
                        .as_ref()
                        .map(|r| r.attributes.as_slice())
                        .unwrap_or(&[]);
                    for sm in &mut rm.scope_metrics {
                        for m in &mut sm.metrics {
                            let name = m.name.as_str();
                            macro_rules! points {
                                ($pts:expr) => {
                                    for p in $pts {
                                        self.edit(
                                            &mut p.attributes,
                                            subject(res, None, Some(name), None),
                                            meta,
                                        );
                                    }
                                };
                            }
                            match &mut m.data {
                                Some(Data::Gauge(g)) => points!(&mut g.data_points),
                                Some(Data::Sum(s)) => points!(&mut s.data_points),
                                Some(Data::Histogram(h)) => points!(&mut h.data_points),
                                Some(Data::ExponentialHistogram(h)) => points!(&mut h.data_points),
                                Some(Data::Summary(s)) => points!(&mut s.data_points),
                                None => {}
                            }
                        }
                    }
                }
            }
        }
    }
}
