//! `routing`: sends each resource of a request to the pipelines of the first route whose OTTL
//! condition it matches (any signal to pipelines of the same signal), as the Collector's
//! routing connector does; resources no route matches go to `default_pipelines`.
//!
//! Routes (`table`): `condition: <OTTL condition>` or `statement: route() where <condition>`,
//! in the `resource` context (the default: `attributes["tenant"]` is a resource attribute) or
//! the `request` context (`request["X-Tenant"] == "acme"`: the request's headers, kept by the
//! receiver with `include_metadata: true`; the whole request follows the route). Every route's
//! `pipelines` must receive from this connector (checked when the graph is built). A condition
//! that fails to evaluate follows `error_mode`: `ignore`/`silent` treat it as no match,
//! `propagate` refuses the request. Resources are grouped so each pipeline gets one request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::component::Diagnostics;
use crate::data::{RequestMeta, Telemetry};
use crate::ottl::targets::{Outer, OuterTarget};
use crate::ottl::{compile_condition, Condition, Context, ErrorMode, Owner};

/// `table[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// `route() where <condition>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// An OTTL condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// `resource` (default) or `request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Pipelines (`traces/acme`) that get what matches.
    pub pipelines: Vec<String>,
}

/// `connectors.routing`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Pipelines for what no route matches (nothing: it is dropped and counted as rejected).
    pub default_pipelines: Vec<String>,
    pub error_mode: ErrorMode,
    pub table: Vec<Route>,
    /// The Collector's old switch: routes always match once (the first match wins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_once: Option<bool>,
}

/// What a compiled route tests.
#[derive(Debug)]
pub enum Test {
    Resource(Condition),
    /// `request["<header>"] == "<value>"` (header names compare case-insensitively).
    Request {
        header: String,
        value: String,
    },
}

/// A compiled route.
#[derive(Debug)]
pub struct CompiledRoute {
    pub test: Test,
    pub pipelines: Vec<String>,
}

/// `request["X-Tenant"] == "acme"`.
fn request_condition(text: &str) -> Option<(String, String)> {
    let rest = text.trim().strip_prefix("request[")?;
    let (key, rest) = rest.split_once(']')?;
    let key = key.trim().strip_prefix('"')?.strip_suffix('"')?;
    let value = rest.trim().strip_prefix("==")?.trim();
    let value = value.strip_prefix('"')?.strip_suffix('"')?;
    Some((key.to_string(), value.to_string()))
}

impl Route {
    /// The condition text, from `condition` or `statement`.
    fn text(&self) -> Result<String, String> {
        match (&self.condition, &self.statement) {
            (Some(c), None) => Ok(c.clone()),
            (None, Some(s)) => s
                .trim()
                .strip_prefix("route()")
                .map(str::trim)
                .and_then(|r| r.strip_prefix("where"))
                .map(|c| c.trim().to_string())
                .ok_or_else(|| format!("expected `route() where <condition>`, got {s:?}")),
            (Some(_), Some(_)) => Err("set condition or statement, not both".into()),
            (None, None) => Err("a route needs a condition or a statement".into()),
        }
    }

    fn compile(&self) -> Result<CompiledRoute, String> {
        let text = self.text()?;
        let test = match self.context.as_deref().unwrap_or("resource") {
            "resource" => Test::Resource(
                compile_condition(Context::Resource, &text)
                    .map_err(|e| format!("{text:?}: {e}"))?,
            ),
            "request" => {
                let (header, value) = request_condition(&text).ok_or_else(|| {
                    format!(
                        "{text:?}: the request context takes request[\"<header>\"] == \"<value>\""
                    )
                })?;
                Test::Request { header, value }
            }
            other => {
                return Err(format!(
                    "context {other:?} is not supported by otelgw (resource, request)"
                ))
            }
        };
        Ok(CompiledRoute {
            test,
            pipelines: self.pipelines.clone(),
        })
    }
}

impl RoutingConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.table.is_empty() {
            diag.error(format!("{path}.table"), "at least one route is required");
        }
        if self.match_once.is_some() {
            diag.warn(
                format!("{path}.match_once"),
                "accepted for compatibility; the first matching route always wins",
            );
        }
        for (i, r) in self.table.iter().enumerate() {
            if let Err(e) = r.compile() {
                diag.error(format!("{path}.table[{i}]"), e);
            }
            if r.pipelines.is_empty() {
                diag.error(format!("{path}.table[{i}].pipelines"), "required");
            }
        }
    }

    /// Every pipeline the connector may send to.
    pub fn pipelines(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .table
            .iter()
            .flat_map(|r| r.pipelines.iter().map(String::as_str))
            .chain(self.default_pipelines.iter().map(String::as_str))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The compiled table (validated before).
    pub fn compile(&self) -> Vec<CompiledRoute> {
        self.table.iter().filter_map(|r| r.compile().ok()).collect()
    }
}

/// Where the parts of a request go: route index (`None`: the default) → the part.
pub type Split = BTreeMap<Option<usize>, Telemetry>;

fn header<'m>(meta: &'m RequestMeta, name: &str) -> Option<&'m str> {
    meta.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Splits a request by route. Errors only with `error_mode: propagate`.
pub fn split(
    routes: &[CompiledRoute],
    mode: ErrorMode,
    data: Telemetry,
    meta: &RequestMeta,
) -> Result<Split, String> {
    // a request-context route takes the whole request
    for (i, r) in routes.iter().enumerate() {
        if let Test::Request { header: h, value } = &r.test {
            if header(meta, h) == Some(value.as_str()) {
                return Ok([(Some(i), data)].into());
            }
        }
    }
    let route_of = |resource: &Option<opentelemetry_proto::tonic::resource::v1::Resource>| {
        let mut res = resource.clone();
        let mut cache = Vec::new();
        let target = OuterTarget {
            outer: Outer {
                resource: &mut res,
                scope: None,
                cache: &mut cache,
            },
            own: Owner::Resource,
        };
        for (i, r) in routes.iter().enumerate() {
            if let Test::Resource(c) = &r.test {
                match c.matches(&target) {
                    Ok(true) => return Ok(Some(i)),
                    Ok(false) => {}
                    Err(e) if mode == ErrorMode::Propagate => {
                        return Err(format!("route {i}: {e}"))
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(None)
    };
    let mut out = Split::new();
    macro_rules! group {
        ($req:expr, $field:ident, $variant:ident, $ty:ty) => {{
            let mut parts: BTreeMap<Option<usize>, $ty> = BTreeMap::new();
            for rs in $req.$field {
                let k = route_of(&rs.resource)?;
                parts.entry(k).or_default().$field.push(rs);
            }
            for (k, p) in parts {
                out.insert(k, Telemetry::$variant(p));
            }
        }};
    }
    match data {
        Telemetry::Traces(r) => group!(
            r,
            resource_spans,
            Traces,
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest
        ),
        Telemetry::Metrics(r) => group!(
            r,
            resource_metrics,
            Metrics,
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest
        ),
        Telemetry::Logs(r) => group!(
            r,
            resource_logs,
            Logs,
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest
        ),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    fn cfg(yaml: &str) -> RoutingConfig {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn routes_compile_from_conditions_and_statements_and_report_problems() {
        let c = cfg("default_pipelines: [traces/all]\ntable:\n  - statement: route() where attributes[\"tenant\"] == \"acme\"\n    pipelines: [traces/acme]\n  - condition: attributes[\"tenant\"] == \"ecorp\"\n    pipelines: [traces/ecorp]\n  - context: request\n    condition: request[\"X-Tenant\"] == \"vip\"\n    pipelines: [traces/vip]\n");
        let mut diag = Diagnostics::default();
        c.validate("connectors.routing", &mut diag);
        assert!(diag.errors.is_empty(), "{:?}", diag.errors);
        assert_eq!(c.compile().len(), 3);
        assert_eq!(
            c.pipelines(),
            ["traces/acme", "traces/all", "traces/ecorp", "traces/vip"]
        );
        let bad = cfg("table:\n  - statement: drop() where true\n    pipelines: [a]\n  - condition: attributes[\"x\"] ==\n    pipelines: [b]\n  - context: span\n    condition: name == \"x\"\n    pipelines: [c]\n  - condition: 'true'\n");
        let mut diag = Diagnostics::default();
        bad.validate("r", &mut diag);
        let paths: Vec<&str> = diag.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "r.table[0]",
                "r.table[1]",
                "r.table[2]",
                "r.table[3].pipelines"
            ],
            "{:?}",
            diag.errors
        );
    }

    #[test]
    fn resources_go_to_the_first_matching_route_and_the_rest_to_the_default() {
        let c = cfg("table:\n  - condition: attributes[\"service.instance.id\"] == \"checkout-0\"\n    pipelines: [a]\n  - condition: IsMatch(attributes[\"service.instance.id\"], \"checkout-[01]\")\n    pipelines: [b]\n");
        let routes = c.compile();
        // three resources: instances checkout-0, checkout-1, checkout-2
        let req = testdata::traces(1, 3, 2);
        let names = |t: &Telemetry| -> Vec<String> {
            match t {
                Telemetry::Traces(r) => r
                    .resource_spans
                    .iter()
                    .map(|rs| {
                        rs.resource.as_ref().unwrap().attributes[2]
                            .value
                            .as_ref()
                            .map(|v| format!("{v:?}"))
                            .unwrap()
                    })
                    .collect(),
                _ => vec![],
            }
        };
        let parts = split(
            &routes,
            ErrorMode::Ignore,
            Telemetry::Traces(req),
            &RequestMeta::default(),
        )
        .unwrap();
        let keys: Vec<Option<usize>> = parts.keys().copied().collect();
        assert_eq!(keys, [None, Some(0), Some(1)]);
        assert_eq!(names(&parts[&Some(0)]).len(), 1);
        assert!(names(&parts[&Some(0)])[0].contains("checkout-0"));
        assert!(names(&parts[&Some(1)])[0].contains("checkout-1"));
        assert!(names(&parts[&None])[0].contains("checkout-2"));
        // a request-context route takes the whole request
        let c = cfg("table:\n  - context: request\n    condition: request[\"x-tenant\"] == \"vip\"\n    pipelines: [v]\n  - condition: 'true'\n    pipelines: [a]\n");
        let meta = RequestMeta {
            headers: vec![("X-Tenant".into(), "vip".into())],
            ..RequestMeta::default()
        };
        let s = split(
            &c.compile(),
            ErrorMode::Ignore,
            Telemetry::Traces(testdata::traces(1, 3, 1)),
            &meta,
        )
        .unwrap();
        assert_eq!(s.keys().copied().collect::<Vec<_>>(), [Some(0)]);
    }
}
