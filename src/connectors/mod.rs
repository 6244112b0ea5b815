//! Connectors: the end of one pipeline and the start of others (`connectors:` in the config;
//! the id goes in one pipeline's `exporters` and other pipelines' `receivers`).
//!
//! Contract: the hop is in-process and inline — a connector hands the request to the pipelines
//! that receive from it ([`crate::pipeline::Fanout`]) on the upstream request's path, so
//! backpressure and refusals propagate (a downstream pipeline that refuses makes the upstream
//! receiver refuse, with the same retry hint) and downstream rejections reach the client's
//! `partial_success`. Nothing is serialised; an encoded request stays encoded. Validation
//! (`config/validate.rs`) checks that each connector is used on both sides with signal pairs it
//! supports and that connectors form no cycle.
//!
//! Types: `forward` (any signal to pipelines of the same signal), `count` (traces, metrics or
//! logs to metrics: item counts as sums).

pub mod count;
pub mod forward;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_norway::Value;

use crate::component::{typed, ComponentId, Diagnostics, Signal};
use crate::consumer::{ConsumeError, Rejections};
use crate::data::{Payload, RequestMeta};
use crate::pipeline::Fanout;

/// Every connector type otelgw has.
#[derive(Debug, Clone)]
pub enum ConnectorConfig {
    Count(Box<count::CountConfig>),
    Forward(forward::ForwardConfig),
}

pub const CONNECTOR_TYPES: &[&str] = &["count", "forward"];

impl ConnectorConfig {
    pub fn from_value(
        id: &ComponentId,
        path: &str,
        v: Value,
        diag: &mut Diagnostics,
    ) -> Option<ConnectorConfig> {
        match id.kind.as_str() {
            "count" => typed(path, v, diag).map(|c| ConnectorConfig::Count(Box::new(c))),
            "forward" => typed(path, v, diag).map(ConnectorConfig::Forward),
            other => {
                diag.error(
                    path,
                    format!(
                        "unknown connector type {other:?} (known: {}; spanmetrics and routing are not supported by otelgw yet)",
                        CONNECTOR_TYPES.join(", ")
                    ),
                );
                None
            }
        }
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        match self {
            ConnectorConfig::Count(c) => c.validate(path, diag),
            ConnectorConfig::Forward(_) => {}
        }
    }

    /// True when the connector can take `from` (the signal of a pipeline that exports to it)
    /// to `to` (the signal of a pipeline that receives from it).
    pub fn supports(&self, from: Signal, to: Signal) -> bool {
        match self {
            ConnectorConfig::Count(_) => to == Signal::Metrics,
            ConnectorConfig::Forward(_) => from == to,
        }
    }

    /// What the connector does with a signal pair it does not support, for the error.
    pub fn pairs(&self) -> &'static str {
        match self {
            ConnectorConfig::Count(_) => "traces, metrics or logs → metrics",
            ConnectorConfig::Forward(_) => "traces → traces, metrics → metrics, logs → logs",
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            ConnectorConfig::Count(c) => crate::component::to_value(c),
            ConnectorConfig::Forward(c) => crate::component::to_value(c),
        }
    }
}

/// A running connector: what a pipeline's end hands requests to.
pub struct RunningConnector {
    pub id: ComponentId,
    kind: Kind,
}

enum Kind {
    /// The pipelines that receive from the connector.
    Forward(Fanout),
    /// The counts go to the metrics pipelines that receive from the connector.
    Count(count::Counter, Fanout),
}

impl ConnectorConfig {
    /// Builds the connector for a pipeline of signal `from` that exports to it, given the
    /// pipelines that receive from it (of the signals the connector produces from `from`).
    pub fn build(&self, id: &ComponentId, from: Signal, downstream: Fanout) -> RunningConnector {
        let kind = match self {
            ConnectorConfig::Count(c) => Kind::Count(c.build(from), downstream),
            ConnectorConfig::Forward(_) => Kind::Forward(downstream),
        };
        RunningConnector {
            id: id.clone(),
            kind,
        }
    }
}

impl RunningConnector {
    /// Hands a request to the downstream pipelines, inline: their answer is this hop's answer.
    /// (Boxed: a pipeline's chain awaits its connectors, which await pipelines' chains.)
    pub fn consume(
        &self,
        data: Payload,
        meta: Arc<RequestMeta>,
    ) -> Pin<Box<dyn Future<Output = Result<Rejections, ConsumeError>> + Send + '_>> {
        Box::pin(async move {
            match &self.kind {
                Kind::Forward(f) => f.consume(data, meta).await,
                Kind::Count(counter, f) => {
                    let mut t = data.into_decoded();
                    match counter.count(&mut t) {
                        // the counts' own rejections are not the client's items
                        Some(counts) => f
                            .consume(counts.into(), meta)
                            .await
                            .map(|_| Rejections::default()),
                        None => Ok(Rejections::default()),
                    }
                }
            }
        })
    }

    /// True when the connector needs the decoded request (`count` does; `forward` does not:
    /// each downstream pipeline decodes for itself if it must).
    pub fn reads_items(&self) -> bool {
        match &self.kind {
            Kind::Forward(_) => false,
            Kind::Count(..) => true,
        }
    }
}
