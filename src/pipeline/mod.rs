//! The pipeline graph: receivers → pipelines → exporters, built from a validated [`Config`].
//!
//! - **Fan-out**: one receiver instance feeds every pipeline that lists it ([`Fanout`]); each
//!   pipeline gets its own copy of the data (the last one gets the original, no copy).
//! - **Processors** run inline, in order, on the request path ([`Pipeline::consume`]).
//! - **Fan-in**: one exporter instance is shared by every pipeline that lists it; its bounded
//!   sending queue is the hop where backpressure happens (see [`crate::exporters::runner`]).
//!
//! Start order is exporters → pipelines → receivers; stop order is the reverse, so nothing that
//! was accepted is left behind: receivers stop taking requests and finish the ones in flight,
//! then exporter queues close and drain until the deadline ([`Graph::shutdown`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::admission::{MemoryGate, DECODED_FACTOR};
use crate::config::{ComponentId, Config, PipelineId};
use crate::consumer::{ConsumeError, Rejections};
use crate::data::{Encoded, Payload, RequestMeta, Signal};
use crate::exporters::runner::{ExporterHandle, RunningExporter};
use crate::exporters::{BuildError, QueueConfig, RetryConfig};
use crate::extensions::ExtensionConfig;
use crate::processors::batch::BatchHandle;
use crate::processors::{Built, Processor, ProcessorConfig};
use crate::receivers::RunningReceiver;
use crate::telemetry::metrics::Registry;

/// What follows a run of inline processors.
pub enum Next {
    /// Fan-in to exporters (the end of the pipeline).
    Exporters(Vec<ExporterHandle>),
    /// A batch stage, whose task runs the rest of the pipeline.
    Batch(BatchHandle),
}

/// A run of inline processors and what comes after them. A pipeline is a chain; a batch stage
/// holds the chain that follows it.
pub struct Chain {
    processors: Vec<Arc<dyn Processor>>,
    next: Next,
    /// When a memory limiter is configured, queued batches are held on its account.
    gate: Option<Arc<MemoryGate>>,
}

impl Chain {
    /// True when every processor of the chain edits only resources (or there are none).
    fn resource_only(&self) -> bool {
        self.processors.iter().all(|p| p.resource_only())
    }

    fn process_decoded(
        &self,
        data: Payload,
        meta: &RequestMeta,
        rejected: &mut Rejections,
    ) -> Payload {
        // Forwarded bytes decoded here were not on the gate's account as decoded structs
        // (the receiver reserved their size only); they are until the exporters' queues take
        // over the accounting.
        let _decoding = match (&data, &self.gate) {
            (Payload::Encoded(e), Some(g)) => {
                Some(g.reserve(DECODED_FACTOR * e.bytes.len() as u64))
            }
            _ => None,
        };
        let mut t = data.into_decoded();
        for p in &self.processors {
            p.process(&mut t, meta, rejected);
        }
        Payload::Decoded(t)
    }

    /// True when something on this chain reads the contents: a processor that reads more than
    /// resources, or an exporter that does not send the OTLP encoding as it is. A receiver
    /// whose chains all read the contents decodes up front instead of checking the bytes and
    /// decoding later ([`Fanout::forwards_bytes`]).
    pub fn reads_contents(&self) -> bool {
        !self.resource_only()
            || match &self.next {
                Next::Exporters(e) => e.iter().any(|e| !e.sends_encoded()),
                Next::Batch(b) => b.reads_contents(),
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
            Payload::Encoded(e) if self.resource_only() => {
                let edited = crate::wire::edit_resources(&e.bytes, |r| {
                    for p in &self.processors {
                        p.edit_resource(r, &meta);
                    }
                });
                match edited {
                    Some(bytes) => Payload::Encoded(Encoded { bytes, ..e }),
                    // not reached for bytes `wire::scan` accepted; decoding is always right
                    None => self.process_decoded(Payload::Encoded(e), &meta, &mut rejected),
                }
            }
            data => self.process_decoded(data, &meta, &mut rejected),
        };
        if data.is_empty() {
            return Ok(rejected);
        }
        match &self.next {
            Next::Batch(b) => b.consume(data, meta).await?,
            Next::Exporters(exporters) => {
                let n = exporters.len();
                let mut data = Some(data);
                let mut shared_bytes = None;
                for (i, e) in exporters.iter().enumerate() {
                    let d = if i + 1 == n {
                        data.take()
                    } else {
                        data.clone()
                    };
                    let Some(d) = d else { break };
                    let mut batch = d.into_batch(meta.clone());
                    if let Some(g) = &self.gate {
                        batch = match batch.encoded_input() {
                            // one buffer however many exporters share it; an exporter that
                            // reads the contents decodes its own copy, kept with its batch
                            Some(len) => {
                                let shared = shared_bytes
                                    .get_or_insert_with(|| Arc::new(g.reserve(len)))
                                    .clone();
                                let decoded = (!e.sends_encoded())
                                    .then(|| Arc::new(g.reserve(DECODED_FACTOR * len)));
                                batch.with_memory(Some(shared)).with_memory(decoded)
                            }
                            // the receiver's size when known (no walk); batches have none
                            None => {
                                let size = match meta.wire_size {
                                    0 => batch.data().encoded_len() as u64,
                                    n => n,
                                };
                                batch.with_memory(Some(Arc::new(g.reserve(DECODED_FACTOR * size))))
                            }
                        };
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
    head: Chain,
}

impl Pipeline {
    pub async fn consume(
        &self,
        data: Payload,
        meta: Arc<RequestMeta>,
    ) -> Result<Rejections, ConsumeError> {
        self.head.consume(data, meta).await
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

    /// True when some pipeline forwards the client's bytes as they are (nothing on it reads
    /// the contents, [`Chain::reads_contents`]): the receiver then keeps requests encoded
    /// ([`Payload::Encoded`]) and a pipeline that reads them decodes its own copy. Checking the
    /// bytes and decoding costs less than decoding and encoding them again.
    pub fn forwards_bytes(&self) -> bool {
        self.pipelines.iter().any(|p| !p.head.reads_contents())
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

/// What a receiver gets at build time: its fan-outs by signal and shared services.
#[derive(Clone)]
pub struct ReceiverContext {
    pub id: ComponentId,
    pub traces: Fanout,
    pub metrics: Fanout,
    pub logs: Fanout,
    pub registry: Arc<Registry>,
    /// The admission gate, when a memory limiter is configured.
    pub gate: Option<Arc<MemoryGate>>,
}

impl ReceiverContext {
    pub fn fanout(&self, s: Signal) -> &Fanout {
        match s {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }
}

/// A running graph.
pub struct Graph {
    receivers: Vec<RunningReceiver>,
    gate: Option<Arc<MemoryGate>>,
    sampler: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
    /// Batch stages, head of each pipeline first: closed and awaited in this order at shutdown.
    stages: Vec<(BatchHandle, tokio::task::JoinHandle<()>)>,
    exporters: Vec<RunningExporter>,
}

impl Graph {
    /// Builds and starts everything the config's pipelines use.
    pub async fn start(cfg: &Config, registry: &Arc<Registry>) -> Result<Graph, BuildError> {
        // The admission gate: the smallest memory limiter any pipeline names.
        let gate = memory_gate(cfg, registry);
        let (gate_stop, gate_stop_rx) = tokio::sync::watch::channel(false);
        let sampler = gate.as_ref().map(|g| g.spawn_sampler(gate_stop_rx));
        // Exporters first, so pipelines have somewhere to send.
        let mut exporters = Vec::new();
        let mut handles: BTreeMap<String, ExporterHandle> = BTreeMap::new();
        for (id, ecfg) in &cfg.exporters {
            let used = cfg
                .pipelines
                .iter()
                .any(|(_, p)| p.exporters.contains(&id.to_string()));
            if !used {
                continue;
            }
            let exporter = match ecfg.build(id, registry) {
                Ok(e) => e,
                Err(e) => {
                    drain_all(exporters, Instant::now()).await;
                    return Err(BuildError::Other(format!("exporter {id}: {e}")));
                }
            };
            let queue = ecfg.queue().cloned().unwrap_or(QueueConfig {
                num_consumers: 1,
                queue_size: 100,
                ..Default::default()
            });
            let retry = ecfg.retry().cloned().unwrap_or(RetryConfig {
                enabled: false,
                ..Default::default()
            });
            let storage = queue
                .storage
                .as_deref()
                .and_then(|s| ComponentId::parse(s).ok())
                .and_then(|s| match cfg.extensions.get(&s) {
                    Some(ExtensionConfig::FileStorage(f)) => Some(f),
                    _ => None,
                });
            let running = match RunningExporter::start(
                &id.to_string(),
                exporter,
                &queue,
                retry,
                registry,
                storage,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    drain_all(exporters, Instant::now()).await;
                    return Err(BuildError::Other(format!("exporter {id}: {e}")));
                }
            };
            handles.insert(id.to_string(), running.handle.clone());
            exporters.push(running);
        }

        let mut pipelines: Vec<(PipelineId, Vec<String>, Arc<Pipeline>)> = Vec::new();
        let mut stages = Vec::new();
        for (pid, pcfg) in &cfg.pipelines {
            // Build from the tail: exporters, then each processor in reverse; a batch stage
            // takes the chain after it.
            let exporters = pcfg
                .exporters
                .iter()
                .filter_map(|e| handles.get(e).cloned())
                .collect();
            let mut next = Next::Exporters(exporters);
            let mut inline: Vec<Arc<dyn Processor>> = Vec::new();
            let mut pipeline_stages = Vec::new();
            for pname in pcfg.processors.iter().rev() {
                let Some((id, pc)) = ComponentId::parse(pname)
                    .ok()
                    .and_then(|id| cfg.processors.get_key_value(&id))
                else {
                    continue;
                };
                match pc.build(id, registry) {
                    Built::Inline(p) => inline.insert(0, p),
                    Built::Nothing => {}
                    Built::Batch(bcfg) => {
                        let tail = Chain {
                            processors: std::mem::take(&mut inline),
                            next,
                            gate: gate.clone(),
                        };
                        let (h, task) = BatchHandle::start(
                            &id.to_string(),
                            &pid.to_string(),
                            &bcfg,
                            tail,
                            registry,
                        );
                        pipeline_stages.insert(0, (h.clone(), task));
                        next = Next::Batch(h);
                    }
                }
            }
            stages.extend(pipeline_stages);
            let pipeline = Arc::new(Pipeline {
                id: pid.clone(),
                head: Chain {
                    processors: inline,
                    next,
                    gate: gate.clone(),
                },
            });
            if !pipeline.head.reads_contents() {
                tracing::info!(pipeline = %pid, "pipeline forwards protobuf as received (nothing on it reads the contents)");
            }
            pipelines.push((pid.clone(), pcfg.receivers.clone(), pipeline));
        }

        let mut receivers = Vec::new();
        for (id, rcfg) in &cfg.receivers {
            let name = id.to_string();
            let mut ctx = ReceiverContext {
                id: id.clone(),
                traces: Fanout::default(),
                metrics: Fanout::default(),
                logs: Fanout::default(),
                registry: registry.clone(),
                gate: gate.clone(),
            };
            for (pid, recv, p) in &pipelines {
                if recv.contains(&name) {
                    let f = match pid.signal {
                        Signal::Traces => &mut ctx.traces,
                        Signal::Metrics => &mut ctx.metrics,
                        Signal::Logs => &mut ctx.logs,
                    };
                    f.pipelines.push(p.clone());
                }
            }
            if ctx.traces.is_empty() && ctx.metrics.is_empty() && ctx.logs.is_empty() {
                continue;
            }
            match crate::receivers::start(rcfg, ctx).await {
                Ok(r) => receivers.push(r),
                Err(e) => {
                    for r in receivers {
                        r.stop().await;
                    }
                    close_stages(stages, Instant::now()).await;
                    drain_all(exporters, Instant::now()).await;
                    return Err(BuildError::Other(format!("receiver {id}: {e}")));
                }
            }
        }
        Ok(Graph {
            receivers,
            sampler: sampler.map(|t| (gate_stop, t)),
            gate,
            stages,
            exporters,
        })
    }

    /// Addresses the receivers actually listen on (useful with port 0).
    pub fn receiver_addresses(&self) -> Vec<(String, std::net::SocketAddr)> {
        self.receivers
            .iter()
            .flat_map(|r| r.addresses.clone())
            .collect()
    }

    /// Stops receivers (in-flight requests finish), then drains exporter queues until
    /// `timeout` has passed.
    pub async fn shutdown(self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for r in self.receivers {
            if tokio::time::timeout_at(deadline.into(), r.stop())
                .await
                .is_err()
            {
                tracing::warn!("receiver did not stop before the shutdown deadline");
            }
        }
        close_stages(self.stages, deadline).await;
        drain_all(self.exporters, deadline).await;
        if let Some((stop, task)) = self.sampler {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }

    /// The admission gate, when a memory limiter is configured.
    pub fn gate(&self) -> Option<Arc<MemoryGate>> {
        self.gate.clone()
    }
}

/// Builds the admission gate from the memory limiters the pipelines use (smallest limit wins).
fn memory_gate(cfg: &Config, registry: &Arc<Registry>) -> Option<Arc<MemoryGate>> {
    let mut best: Option<(u64, u64, Duration)> = None;
    for (_, p) in &cfg.pipelines {
        for name in &p.processors {
            let Some(ProcessorConfig::MemoryLimiter(m)) = ComponentId::parse(name)
                .ok()
                .and_then(|id| cfg.processors.get(&id))
            else {
                continue;
            };
            match m.limits() {
                Some((hard, soft)) if best.is_none_or(|(h, _, _)| hard < h) => {
                    best = Some((hard, soft, m.check_interval.get()))
                }
                Some(_) => {}
                None => {
                    tracing::error!(processor = %name, "cannot read the memory total; limiter off")
                }
            }
        }
    }
    best.map(|(hard, soft, interval)| {
        tracing::info!(
            hard_mib = hard >> 20,
            soft_mib = soft >> 20,
            "memory limiter: admission gate on"
        );
        MemoryGate::new(hard, soft, interval, registry)
    })
}

/// Closes each batch stage and waits for it to flush, head of each pipeline first (a stage
/// flushes into the next one, which must still be open).
async fn close_stages(stages: Vec<(BatchHandle, tokio::task::JoinHandle<()>)>, deadline: Instant) {
    for (h, task) in stages {
        h.close();
        if tokio::time::timeout_at(deadline.into(), task)
            .await
            .is_err()
        {
            tracing::warn!("batch stage did not flush before the shutdown deadline");
        }
    }
}

async fn drain_all(exporters: Vec<RunningExporter>, deadline: Instant) {
    futures_util::future::join_all(exporters.into_iter().map(|e| e.drain(deadline))).await;
}
