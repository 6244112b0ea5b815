//! Processors: edits between receivers and exporters. One closed enum of types, matched here.
//!
//! A [`Processor`] runs inline on the request path, in the order the pipeline lists it: it edits
//! the request in place and may remove items, reporting how many and why in [`Rejections`] (the
//! receiver turns that into OTLP `partial_success`). It never blocks and never does I/O: what
//! a processor must look up (resource detection) is looked up once, when the graph starts
//! ([`ProcessorConfig::prepare`]), and handed to its instances.

pub mod actions;
pub mod attributes;
pub mod batch;
pub mod cardinality_limit;
pub mod filter;
pub mod memory_limiter;
pub mod probabilistic_sampler;
pub mod resource;
pub mod resourcedetection;
pub mod tail_sampling;
pub mod transform;

use std::sync::Arc;

use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::component::{typed, ComponentId, Diagnostics};
use crate::data::{Encoded, RequestMeta, Signal, Telemetry};

pub use crate::consumer::Rejections;

/// What a processor reads of a request. It decides the form a request must be in when it
/// reaches the processor, and so whether a pipeline decodes at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Resources only, one at a time ([`Processor::edit_resource`]): an encoded request's
    /// resources are edited and its items copied as they are ([`crate::wire::edit_resources`]).
    Resources,
    /// Items of an encoded request, read and edited on the wire ([`Processor::edit_encoded`]:
    /// by default one [`crate::wire::edit_items`] pass of [`Processor::edit_item`]). A
    /// processor may ask for one request decoded (`cardinality_limit` does when a point
    /// belongs to a series it has not seen); the chain then runs [`Processor::process`].
    Items,
    /// The whole decoded request ([`Processor::process`]).
    Decoded,
}

/// A running processor.
pub trait Processor: Send + Sync + 'static {
    /// Edits a decoded request. Every processor has it: a request arrives decoded when the
    /// receiver decoded it (JSON, malformed ids) or an earlier processor needed it decoded.
    fn process(&self, data: &mut Telemetry, meta: &RequestMeta, rejected: &mut Rejections);

    /// What the processor reads; [`Reads::Decoded`] unless it implements
    /// [`Processor::edit_resource`] or [`Processor::edit_item`] and says so. A pipeline whose
    /// processors all read less than [`Reads::Decoded`] (and whose exporters send the OTLP
    /// encoding) never decodes.
    fn reads(&self) -> Reads {
        Reads::Decoded
    }

    /// The cardinality tracker the processor keeps, if any (the graph lists it on the
    /// `/debug/cardinality` board).
    fn cardinality_tracker(&self) -> Option<Arc<crate::cardinality::tracker::Tracker>> {
        None
    }

    /// Edits one resource (called when [`Processor::reads`] is [`Reads::Resources`]).
    fn edit_resource(&self, _resource: &mut Option<Resource>, _meta: &RequestMeta) {}

    /// Edits one item of an encoded request (called by the default
    /// [`Processor::edit_encoded`]); must do what [`Processor::process`] does to that item.
    fn edit_item(&self, _item: &mut crate::wire::ItemEdit<'_, '_>, _meta: &RequestMeta) {}

    /// Edits an encoded request (called when [`Processor::reads`] is [`Reads::Items`]); must
    /// do what [`Processor::process`] does to it. `None` asks for the request decoded: the
    /// chain decodes it and calls [`Processor::process`] instead, so a processor that returns
    /// `None` must not have changed any state `process` depends on.
    fn edit_encoded(&self, e: &Encoded, meta: &RequestMeta) -> Option<crate::wire::Edited> {
        crate::wire::edit_items(e.signal, &e.bytes, |item| self.edit_item(item, meta))
    }
}

/// Every processor type otelgw has.
#[derive(Debug, Clone)]
pub enum ProcessorConfig {
    Attributes(Box<attributes::AttributesConfig>),
    Batch(batch::BatchConfig),
    CardinalityLimit(Box<cardinality_limit::CardinalityLimitConfig>),
    Filter(Box<filter::FilterConfig>),
    MemoryLimiter(memory_limiter::MemoryLimiterConfig),
    ProbabilisticSampler(Box<probabilistic_sampler::ProbabilisticSamplerConfig>),
    Resource(resource::ResourceConfig),
    ResourceDetection(Box<resourcedetection::ResourceDetectionConfig>),
    TailSampling(Box<tail_sampling::TailSamplingConfig>),
    Transform(Box<transform::TransformConfig>),
    /// Passes data through unchanged (useful to test graphs, and as the processor template).
    Noop(NoopConfig),
}

pub const PROCESSOR_TYPES: &[&str] = &[
    "attributes",
    "batch",
    "cardinality_limit",
    "filter",
    "memory_limiter",
    "noop",
    "probabilistic_sampler",
    "resource",
    "resourcedetection (alias resource_detection)",
    "tail_sampling",
    "transform",
];

/// What a processor config builds: an inline processor or a stage of its own.
pub enum Built {
    Inline(Arc<dyn Processor>),
    Batch(batch::BatchConfig),
    /// A `tail_sampling` stage (the policies are built from the validated config).
    TailSampling(Box<tail_sampling::TailSamplingConfig>),
    /// Nothing runs at this position (`memory_limiter` acts at the receivers, `noop` does
    /// nothing), so it does not make the pipeline read the contents.
    Nothing,
}

impl ProcessorConfig {
    pub fn from_value(
        id: &ComponentId,
        path: &str,
        v: Value,
        diag: &mut Diagnostics,
    ) -> Option<ProcessorConfig> {
        match id.kind.as_str() {
            "attributes" => typed(path, v, diag).map(|c| ProcessorConfig::Attributes(Box::new(c))),
            "batch" => typed(path, v, diag).map(ProcessorConfig::Batch),
            "cardinality_limit" => {
                typed(path, v, diag).map(|c| ProcessorConfig::CardinalityLimit(Box::new(c)))
            }
            "filter" => typed(path, v, diag).map(|c| ProcessorConfig::Filter(Box::new(c))),
            "memory_limiter" => typed(path, v, diag).map(ProcessorConfig::MemoryLimiter),
            "probabilistic_sampler" => {
                typed(path, v, diag).map(|c| ProcessorConfig::ProbabilisticSampler(Box::new(c)))
            }
            "resource" => typed(path, v, diag).map(ProcessorConfig::Resource),
            "resourcedetection" | "resource_detection" => {
                typed(path, v, diag).map(|c| ProcessorConfig::ResourceDetection(Box::new(c)))
            }
            "tail_sampling" => {
                typed(path, v, diag).map(|c| ProcessorConfig::TailSampling(Box::new(c)))
            }
            "transform" => typed(path, v, diag).map(|c| ProcessorConfig::Transform(Box::new(c))),
            "noop" => typed(path, v, diag).map(ProcessorConfig::Noop),
            other => {
                diag.error(
                    path,
                    format!(
                        "unknown processor type {other:?} (known: {})",
                        PROCESSOR_TYPES.join(", ")
                    ),
                );
                None
            }
        }
    }

    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        match self {
            ProcessorConfig::Attributes(c) => c.validate(path, diag),
            ProcessorConfig::Batch(c) => c.validate(path, diag),
            ProcessorConfig::CardinalityLimit(c) => c.validate(path, diag),
            ProcessorConfig::Filter(c) => c.validate(path, diag),
            ProcessorConfig::MemoryLimiter(c) => c.validate(path, diag),
            ProcessorConfig::ProbabilisticSampler(c) => c.validate(path, diag),
            ProcessorConfig::Resource(c) => c.validate(path, diag),
            ProcessorConfig::ResourceDetection(c) => c.validate(path, diag),
            ProcessorConfig::TailSampling(c) => c.validate(path, diag),
            ProcessorConfig::Transform(c) => c.validate(path, diag),
            ProcessorConfig::Noop(_) => {}
        }
    }

    pub fn supports(&self, signal: Signal) -> bool {
        match self {
            ProcessorConfig::CardinalityLimit(_) => signal == Signal::Metrics,
            ProcessorConfig::ProbabilisticSampler(_) => signal != Signal::Metrics,
            ProcessorConfig::TailSampling(_) => signal == Signal::Traces,
            _ => true,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            ProcessorConfig::Attributes(c) => crate::component::to_value(c),
            ProcessorConfig::Batch(c) => crate::component::to_value(c),
            ProcessorConfig::CardinalityLimit(c) => crate::component::to_value(c),
            ProcessorConfig::Filter(c) => crate::component::to_value(c),
            ProcessorConfig::MemoryLimiter(c) => crate::component::to_value(c),
            ProcessorConfig::ProbabilisticSampler(c) => crate::component::to_value(c),
            ProcessorConfig::Resource(c) => crate::component::to_value(c),
            ProcessorConfig::ResourceDetection(c) => crate::component::to_value(c),
            ProcessorConfig::TailSampling(c) => crate::component::to_value(c),
            ProcessorConfig::Transform(c) => crate::component::to_value(c),
            ProcessorConfig::Noop(c) => crate::component::to_value(c),
        }
    }

    /// Does the I/O a processor needs once per graph, before any of its instances is built
    /// (resource detection); called once per processor id when the graph starts, so also at
    /// each reload. Never per request, never per pipeline.
    pub async fn prepare(
        &self,
        id: &ComponentId,
        registry: &crate::telemetry::metrics::Registry,
    ) -> Prepared {
        match self {
            ProcessorConfig::ResourceDetection(c) => Prepared {
                detected: Some(Arc::new(c.detect(&id.to_string(), registry).await)),
            },
            _ => Prepared::default(),
        }
    }

    /// Builds the running processor for one pipeline of `signal` (each pipeline gets its own
    /// instance), from what [`ProcessorConfig::prepare`] found for this id.
    pub fn build(
        &self,
        id: &ComponentId,
        signal: Signal,
        registry: &crate::telemetry::metrics::Registry,
        prepared: &Prepared,
    ) -> Built {
        match self {
            ProcessorConfig::Attributes(c) => Built::Inline(Arc::new(c.build())),
            ProcessorConfig::Batch(c) => Built::Batch(c.clone()),
            ProcessorConfig::TailSampling(c) => Built::TailSampling(c.clone()),
            ProcessorConfig::CardinalityLimit(c) => {
                Built::Inline(Arc::new(c.build(&id.to_string(), registry)))
            }
            ProcessorConfig::Filter(c) => {
                Built::Inline(Arc::new(c.build(&id.to_string(), signal, registry)))
            }
            ProcessorConfig::Transform(c) => {
                Built::Inline(Arc::new(c.build(&id.to_string(), signal, registry)))
            }
            // The limiter acts at the receivers (the admission gate), not at its position here.
            ProcessorConfig::MemoryLimiter(_) => Built::Nothing,
            ProcessorConfig::ProbabilisticSampler(c) => {
                Built::Inline(Arc::new(c.build(&id.to_string(), signal, registry)))
            }
            ProcessorConfig::Resource(c) => Built::Inline(Arc::new(c.build())),
            ProcessorConfig::ResourceDetection(c) => Built::Inline(Arc::new(
                c.build(prepared.detected.clone().unwrap_or_default()),
            )),
            ProcessorConfig::Noop(_) => Built::Nothing,
        }
    }
}

/// What [`ProcessorConfig::prepare`] found for one processor id, shared by the instances
/// [`ProcessorConfig::build`] makes of it (one per pipeline). Empty for processors that
/// prepare nothing; a `resourcedetection` built from an empty one merges nothing.
#[derive(Debug, Default, Clone)]
pub struct Prepared {
    detected: Option<Arc<Vec<opentelemetry_proto::tonic::common::v1::KeyValue>>>,
}

/// `processors.noop`: no settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopConfig {}
