//! A pipeline's request path: [`Fanout`] (one receiver → every pipeline that lists it),
//! [`Chain`] (inline processors in order, then what follows them: the exporters, fan-in, or a
//! batch stage that runs the rest of the chain), and the memory each hop holds on the admission
//! gate's account.
//!
//! Contract: `consume` answers only once every exporter queue the data reaches has taken it (or
//! refused it); processors edit the request in place and report removed items in
//! [`Rejections`]. A request travels as the client's bytes ([`Payload::Encoded`]) as long as
//! nothing on its chain reads the items ([`Chain::reads_items`]).

use std::sync::Arc;

use super::batch::BatchHandle;
use super::tail_sampling::TailSamplingHandle;
use crate::admission::{Cost, MemoryGate};
use crate::component::PipelineId;
use crate::connectors::RunningConnector;
use crate::consumer::{ConsumeError, Rejections};
use crate::data::{Encoded, Payload, RequestMeta};
use crate::exporters::sending_queue::ExporterHandle;
use crate::processors::{Processor, Reads};
use crate::wire;

/// What follows a run of inline processors.
pub enum Next {
    /// The end of the pipeline: fan-in to exporters, and the connectors that start other
    /// pipelines (inline: their answer is part of this pipeline's).
    Exporters {
        exporters: Vec<ExporterHandle>,
        connectors: Vec<Arc<RunningConnector>>,
    },
    /// A batch stage, whose task runs the rest of the pipeline.
    Batch(BatchHandle),
    /// A tail sampling stage, whose task runs the rest of the pipeline (it reads the items).
    TailSampling(TailSamplingHandle),
}

/// A run of inline processors and what comes after them. A pipeline is a chain; a batch stage
/// holds the chain that follows it.
pub struct Chain {
    pub(super) processors: Vec<Arc<dyn Processor>>,
    pub(super) next: Next,
    /// When a memory limiter is configured, queued batches are held on its account.
    pub(super) gate: Option<Arc<MemoryGate>>,
}

impl Chain {
    /// True when some processor of the chain needs the decoded request ([`Reads::Decoded`]).
    fn processors_decode(&self) -> bool {
        self.processors.iter().any(|p| p.reads() == Reads::Decoded)
    }

    /// Runs `processors` on the decoded request.
    fn process_decoded(
        &self,
        processors: &[Arc<dyn Processor>],
        data: Payload,
        meta: &RequestMeta,
        rejected: &mut Rejections,
    ) -> Payload {
        // Forwarded bytes decoded here were not on the gate's account as decoded structs
        // (the receiver held their size only); they are until the next hop holds them.
        let _decoding = match (&data, &self.gate) {
            (Payload::Encoded(e), Some(g)) => Some(g.hold(Cost::Decoded(e.bytes.len() as u64))),
            _ => None,
        };
        let mut t = data.into_decoded();
        for p in processors {
            p.process(&mut t, meta, rejected);
        }
        Payload::Decoded(t)
    }

    /// Runs the processors on an encoded request without decoding it: a run of processors
    /// that read resources edits them in one pass ([`wire::edit_resources`]), a processor
    /// that reads items edits them in its own pass ([`wire::edit_items`]). Each pass copies
    /// the request once, or not at all when it changes nothing.
    fn process_encoded(
        &self,
        mut e: Encoded,
        meta: &RequestMeta,
        rejected: &mut Rejections,
    ) -> Payload {
        let mut i = 0;
        while let Some(p) = self.processors.get(i) {
            let (edited, next) = match p.reads() {
                Reads::Resources => {
                    let run = self.processors[i..]
                        .iter()
                        .take_while(|p| p.reads() == Reads::Resources)
                        .count();
                    let run = &self.processors[i..i + run];
                    let edited = wire::edit_resources(&e.bytes, |r| {
                        for p in run {
                            p.edit_resource(r, meta);
                        }
                    });
                    (edited, i + run.len())
                }
                Reads::Items => {
                    let edited = p.edit_encoded(&e, meta).map(|out| {
                        e.items = e.items.saturating_sub(out.removed);
                        out.bytes
                    });
                    (edited, i + 1)
                }
                Reads::Decoded => (None, i),
            };
            match edited {
                Some(bytes) => e.bytes = bytes,
                // the processor asked for this request decoded (or, not reached for bytes
                // `wire::scan` accepted, the walk failed); decoding is always right
                None => {
                    let rest = &self.processors[i..];
                    return self.process_decoded(rest, Payload::Encoded(e), meta, rejected);
                }
            }
            i = next;
        }
        Payload::Encoded(e)
    }

    /// True when this chain needs the decoded request: a processor that reads
    /// [`Reads::Decoded`], or an end where every exporter and connector reads the items. A
    /// receiver whose chains all need it decodes up front instead of checking the bytes and
    /// decoding later ([`Fanout::reads_items`]). When one end forwards the OTLP bytes as they
    /// are, the request stays encoded and each end that reads the items decodes its own copy:
    /// a decode per reader costs less than decoding once and encoding again for the forwarder
    /// (span metrics beside an OTLP exporter, a Prometheus exporter beside one).
    pub fn reads_items(&self) -> bool {
        self.processors_decode()
            || match &self.next {
                Next::Exporters {
                    exporters,
                    connectors,
                } => {
                    let mut ends = exporters
                        .iter()
                        .map(|e| e.reads_items())
                        .chain(connectors.iter().map(|c| c.reads_items()))
                        .peekable();
                    ends.peek().is_some() && ends.all(|r| r)
                }
                Next::Batch(b) => b.reads_items(),
                Next::TailSampling(_) => true,
            }
    }

    /// Runs the processors, then hands the result on. Returns what processors rejected (for
    /// `partial_success`).
    pub async fn consume(
        &self,
        data: Payload,
        meta: Arc<RequestMeta>,
    ) -> Result<Rejections, ConsumeError> {
        let mut rejected = Rejections::default();
        let data = match data {
            data if self.processors.is_empty() => data,
            Payload::Encoded(e) if !self.processors_decode() => {
                self.process_encoded(e, &meta, &mut rejected)
            }
            data => self.process_decoded(&self.processors, data, &meta, &mut rejected),
        };
        if data.is_empty() {
            return Ok(rejected);
        }
        // priced once (a decoded request without a known size costs a walk), and only when a
        // memory limiter keeps the account
        let cost = self.gate.as_ref().map(|_| data.cost(meta.wire_size));
        match &self.next {
            Next::Batch(b) => {
                // held until the batch it joins has been handed on
                let held = self.gate.as_ref().zip(cost).map(|(g, c)| g.hold(c));
                let wire = cost.map_or(meta.wire_size, Cost::wire_bytes);
                b.consume(data, meta, wire, held).await?
            }
            // it splits the request by trace and holds each part on the gate's account
            Next::TailSampling(t) => t.consume(data, meta).await?,
            Next::Exporters {
                exporters,
                connectors,
            } => {
                let n = exporters.len();
                // connectors first, each with its own copy (an encoded request is shared
                // bytes); the last consumer of all takes the original
                let mut data = Some(data);
                for (i, c) in connectors.iter().enumerate() {
                    let d = if n == 0 && i + 1 == connectors.len() {
                        data.take()
                    } else {
                        data.clone()
                    };
                    let Some(d) = d else { break };
                    let r = c.consume(d, meta.clone()).await?;
                    rejected.merge(r);
                }
                let Some(data) = data else {
                    return Ok(rejected);
                };
                let mut data = Some(data);
                let mut shared_bytes = None;
                for (i, e) in exporters.iter().enumerate() {
                    let d = if i + 1 == n {
                        data.take()
                    } else {
                        data.clone()
                    };
                    let Some(d) = d else { break };
                    let mut batch = d.into_outgoing(meta.clone());
                    if let Some((g, cost)) = self.gate.as_ref().zip(cost) {
                        batch = match cost {
                            // one buffer however many exporters share it; an exporter that
                            // reads the items decodes its own copy, kept with its batch
                            Cost::Bytes(len) => {
                                let shared = shared_bytes
                                    .get_or_insert_with(|| Arc::new(g.hold(cost)))
                                    .clone();
                                let decoded = e
                                    .reads_items()
                                    .then(|| Arc::new(g.hold(Cost::Decoded(len))));
                                batch.with_memory(Some(shared)).with_memory(decoded)
                            }
                            Cost::Decoded(_) | Cost::Scrape { .. } => {
                                batch.with_memory(Some(Arc::new(g.hold(cost))))
                            }
                        }
                        .with_wire_size(cost.wire_bytes());
                    }
                    e.consume(batch).await?;
                }
            }
        }
        Ok(rejected)
    }
}

/// One `service.pipelines.<id>`.
pub struct Pipeline {
    pub id: PipelineId,
    pub(super) head: Chain,
}

impl Pipeline {
    pub async fn consume(
        &self,
        data: Payload,
        meta: Arc<RequestMeta>,
    ) -> Result<Rejections, ConsumeError> {
        self.head.consume(data, meta).await
    }

    /// True when something on the pipeline reads the items ([`Chain::reads_items`]).
    pub fn reads_items(&self) -> bool {
        self.head.reads_items()
    }
}

/// The pipelines one receiver feeds for one signal.
#[derive(Clone, Default)]
pub struct Fanout {
    pipelines: Vec<Arc<Pipeline>>,
}

impl Fanout {
    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }

    /// True when every pipeline reads the items ([`Chain::reads_items`]): the receiver then
    /// decodes up front. Otherwise some pipeline forwards the client's bytes as they are, the
    /// receiver keeps requests encoded ([`Payload::Encoded`]) and a pipeline that reads them
    /// decodes its own copy: checking the bytes and decoding costs less than decoding and
    /// encoding them again.
    pub fn reads_items(&self) -> bool {
        self.pipelines.iter().all(|p| p.reads_items())
    }

    /// Adds a pipeline (the graph does, while it is built).
    pub fn push(&mut self, p: Arc<Pipeline>) {
        self.pipelines.push(p);
    }

    /// The pipelines of this fan-out named in `ids` (`traces/acme`).
    pub fn only(&self, ids: &[String]) -> Fanout {
        Fanout {
            pipelines: self
                .pipelines
                .iter()
                .filter(|p| ids.iter().any(|id| *id == p.id.to_string()))
                .cloned()
                .collect(),
        }
    }

    /// Sends `data` into every pipeline. Rejections are summed; the first error wins.
    pub async fn consume(
        &self,
        data: Payload,
        meta: Arc<RequestMeta>,
    ) -> Result<Rejections, ConsumeError> {
        let mut total = Rejections::default();
        let n = self.pipelines.len();
        let mut data = Some(data);
        for (i, p) in self.pipelines.iter().enumerate() {
            let d = if i + 1 == n {
                data.take()
            } else {
                data.clone()
            };
            let Some(d) = d else { break };
            let r = p.consume(d, meta.clone()).await?;
            total.merge(r);
        }
        Ok(total)
    }
}
