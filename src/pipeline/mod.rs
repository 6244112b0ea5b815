//! The pipeline graph: receivers → pipelines → exporters, built from a validated [`Config`].
//!
//! - **Fan-out**: one receiver instance feeds every pipeline that lists it ([`Fanout`]); each
//!   pipeline gets its own copy of the data (the last one gets the original, no copy).
//! - **Processors** run inline, in order, on the request path ([`Pipeline::consume`]).
//! - **Fan-in**: one exporter instance is shared by every pipeline that lists it; its bounded
//!   sending queue is the hop where backpressure happens (see [`crate::exporters::sending_queue`]).
//!
//! Start order is exporters → pipelines → receivers; stop order is the reverse, so nothing that
//! was accepted is left behind: receivers stop taking requests and finish the ones in flight,
//! then exporter queues close and drain until the deadline ([`Graph::shutdown`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::admission::MemoryGate;
use crate::cardinality::report::Board;
use crate::component::Signal;
use crate::component::{ComponentId, PipelineId};
use crate::config::Config;
use crate::connectors::RunningConnector;
use crate::exporters::sending_queue::{local_queue, local_retry, ExporterHandle, RunningExporter};
use crate::exporters::BuildError;
use crate::extensions::ExtensionConfig;
use crate::processors::{Built, Prepared, Processor, ProcessorConfig};
use crate::receivers::{ReceiverContext, RunningReceiver};
use crate::telemetry::metrics::Registry;

pub mod batch;
pub mod chain;
pub mod tail_sampling;

pub use batch::BatchHandle;
pub use chain::{Chain, Fanout, Next, Pipeline};
pub use tail_sampling::TailSamplingHandle;

/// A stage that runs the rest of its pipeline in a task of its own.
#[derive(Clone)]
pub enum StageHandle {
    Batch(BatchHandle),
    TailSampling(TailSamplingHandle),
}

impl StageHandle {
    /// Stops taking requests; the task hands on what it holds and ends.
    pub fn close(&self) {
        match self {
            StageHandle::Batch(b) => b.close(),
            StageHandle::TailSampling(t) => t.close(),
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
    stages: Vec<(StageHandle, tokio::task::JoinHandle<()>)>,
    /// Stateful connectors' flush tasks: stopped (one last flush) after the receivers, before
    /// the stages of the pipelines they feed close.
    connector_tasks: Vec<crate::connectors::FlushTask>,
    exporters: Vec<RunningExporter>,
}

impl Graph {
    /// Builds and starts everything the config's pipelines use.
    /// Every cardinality tracker a component keeps is listed on `board` (`/debug/cardinality`).
    pub async fn start(
        cfg: &Config,
        registry: &Arc<Registry>,
        board: &Board,
    ) -> Result<Graph, BuildError> {
        check_references(cfg)?;
        // Authenticator extensions (token and htpasswd files are read here), for receivers
        // and exporters alike.
        let authenticators = Arc::new(crate::extensions::authenticators(cfg.started_extensions())?);
        // The admission gate: the smallest memory limiter any pipeline names.
        let gate = memory_gate(cfg, registry);
        let (gate_stop, gate_stop_rx) = tokio::sync::watch::channel(false);
        let sampler = gate.as_ref().map(|g| g.spawn_sampler(gate_stop_rx));
        // The I/O some processors do once per graph (resource detection), before anything
        // listens: every processor a pipeline uses, concurrently.
        let prepared = prepare_processors(cfg, registry).await;
        let unprepared = Prepared::default();
        // Exporters first, so pipelines have somewhere to send.
        let mut exporters = Vec::new();
        let mut handles: BTreeMap<ComponentId, ExporterHandle> = BTreeMap::new();
        for (id, ecfg) in &cfg.exporters {
            let used = cfg.pipelines.iter().any(|(_, p)| p.exporters.contains(id));
            if !used {
                continue;
            }
            let exporter = match ecfg.build(id, registry, &authenticators) {
                Ok(e) => {
                    if let Some(t) = e.cardinality_tracker() {
                        board.register(&t);
                    }
                    e
                }
                Err(e) => {
                    drain_all(exporters, Instant::now()).await;
                    return Err(BuildError::Other(format!("exporter {id}: {e}")));
                }
            };
            let queue = ecfg.queue().cloned().unwrap_or_else(local_queue);
            let retry = ecfg.retry().cloned().unwrap_or_else(local_retry);
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
            handles.insert(id.clone(), running.handle.clone());
            exporters.push(running);
        }

        // Pipelines that receive from a connector are built before the pipelines that export
        // to it, so each connector has its downstream pipelines to hand requests to.
        let mut built: BTreeMap<usize, Arc<Pipeline>> = BTreeMap::new();
        let mut stages = Vec::new();
        let mut built_connectors: BTreeMap<(ComponentId, Signal), Arc<RunningConnector>> =
            BTreeMap::new();
        let mut connector_tasks: Vec<crate::connectors::FlushTask> = Vec::new();
        for i in build_order(cfg) {
            let (pid, pcfg) = &cfg.pipelines[i];
            // Build from the tail: exporters, then each processor in reverse; a batch stage
            // takes the chain after it.
            // every id was checked against the config above
            let ends = pcfg
                .exporters
                .iter()
                .filter_map(|e| handles.get(e).cloned())
                .collect();
            let connectors = pcfg
                .exporters
                .iter()
                .filter_map(|c| {
                    let ccfg = cfg.connectors.get(c)?;
                    let mut fanout = Fanout::default();
                    for (j, (_, q)) in cfg.pipelines.iter().enumerate() {
                        if q.receivers.contains(c) {
                            if let Some(p) = built.get(&j) {
                                fanout.push(p.clone());
                            }
                        }
                    }
                    // one running connector per id and upstream signal, however many
                    // pipelines export to it (a stateful one keeps one state)
                    let key = (c.clone(), pid.signal);
                    if let Some(rc) = built_connectors.get(&key) {
                        return Some(Arc::clone(rc));
                    }
                    let rc = Arc::new(ccfg.build(c, pid.signal, fanout, registry));
                    if let Some(t) = rc.take_flush() {
                        connector_tasks.push(t);
                    }
                    built_connectors.insert(key, rc.clone());
                    Some(rc)
                })
                .collect();
            let mut next = Next::Exporters {
                exporters: ends,
                connectors,
            };
            let mut inline: Vec<Arc<dyn Processor>> = Vec::new();
            let mut pipeline_stages = Vec::new();
            for id in pcfg.processors.iter().rev() {
                let Some(pc) = cfg.processors.get(id) else {
                    continue; // checked above
                };
                let prep = prepared.get(id).unwrap_or(&unprepared);
                match pc.build(id, pid.signal, registry, prep) {
                    Built::Inline(p) => {
                        if let Some(t) = p.cardinality_tracker() {
                            board.register(&t);
                        }
                        inline.insert(0, p)
                    }
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
                        pipeline_stages.insert(0, (StageHandle::Batch(h.clone()), task));
                        next = Next::Batch(h);
                    }
                    Built::TailSampling(tcfg) => {
                        let policies = match tcfg.policies() {
                            Ok(p) => p,
                            // validation built them already; never leave tasks behind
                            Err(e) => {
                                stages.splice(0..0, pipeline_stages);
                                close_stages(stages, Instant::now()).await;
                                drain_all(exporters, Instant::now()).await;
                                return Err(BuildError::Other(format!("processor {id}: {e}")));
                            }
                        };
                        let tail = Chain {
                            processors: std::mem::take(&mut inline),
                            next,
                            gate: gate.clone(),
                        };
                        let (h, task) = TailSamplingHandle::start(
                            &id.to_string(),
                            &pid.to_string(),
                            &tcfg,
                            policies,
                            tail,
                            gate.clone(),
                            registry,
                        );
                        pipeline_stages.insert(0, (StageHandle::TailSampling(h.clone()), task));
                        next = Next::TailSampling(h);
                    }
                }
            }
            // upstream pipelines' stages close first (they flush into downstream ones)
            stages.splice(0..0, pipeline_stages);
            let pipeline = Arc::new(Pipeline {
                id: pid.clone(),
                head: Chain {
                    processors: inline,
                    next,
                    gate: gate.clone(),
                },
            });
            if !pipeline.reads_items() {
                tracing::info!(pipeline = %pid, "pipeline forwards protobuf as received (nothing on it reads the contents)");
            }
            built.insert(i, pipeline);
        }
        let pipelines: Vec<(PipelineId, Vec<ComponentId>, Arc<Pipeline>)> = built
            .into_iter()
            .filter_map(|(i, p)| {
                let (pid, pcfg) = cfg.pipelines.get(i)?;
                Some((pid.clone(), pcfg.receivers.clone(), p))
            })
            .collect();

        let mut receivers = Vec::new();
        for (id, rcfg) in &cfg.receivers {
            let mut ctx = ReceiverContext {
                id: id.clone(),
                traces: Fanout::default(),
                metrics: Fanout::default(),
                logs: Fanout::default(),
                registry: registry.clone(),
                gate: gate.clone(),
                authenticators: authenticators.clone(),
                storage: rcfg
                    .storage()
                    .and_then(|(_, s)| ComponentId::parse(s).ok())
                    .and_then(|s| match cfg.extensions.get(&s) {
                        Some(ExtensionConfig::FileStorage(f)) => Some(f.clone()),
                        _ => None,
                    }),
            };
            for (pid, recv, p) in &pipelines {
                if recv.contains(id) {
                    let f = match pid.signal {
                        Signal::Traces => &mut ctx.traces,
                        Signal::Metrics => &mut ctx.metrics,
                        Signal::Logs => &mut ctx.logs,
                    };
                    f.push(p.clone());
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
            connector_tasks,
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
        for (stop, task) in self.connector_tasks {
            let _ = stop.send(true);
            if tokio::time::timeout_at(deadline.into(), task)
                .await
                .is_err()
            {
                tracing::warn!(
                    "a connector's last flush did not finish before the shutdown deadline"
                );
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

/// The pipelines' indices in build order: every pipeline after the pipelines its connectors
/// feed (validation refused cycles; a cycle here would just leave a connector without that
/// downstream pipeline).
fn build_order(cfg: &Config) -> Vec<usize> {
    fn visit(cfg: &Config, i: usize, done: &mut [bool], out: &mut Vec<usize>) {
        if done[i] {
            return;
        }
        done[i] = true;
        for j in crate::config::downstream(cfg, &cfg.pipelines[i].1) {
            visit(cfg, j, done, out);
        }
        out.push(i);
    }
    let mut done = vec![false; cfg.pipelines.len()];
    let mut out = Vec::with_capacity(done.len());
    for i in 0..cfg.pipelines.len() {
        visit(cfg, i, &mut done, &mut out);
    }
    out
}

/// Every component a pipeline names is in the config. A validated config passes; anything else
/// is a bug, and the graph says so instead of running a pipeline without the component.
fn check_references(cfg: &Config) -> Result<(), BuildError> {
    for (pid, p) in &cfg.pipelines {
        let missing = p
            .receivers
            .iter()
            .filter(|id| !cfg.receivers.contains_key(id) && !cfg.connectors.contains_key(id))
            .map(|id| ("receiver", id))
            .chain(
                p.processors
                    .iter()
                    .filter(|id| !cfg.processors.contains_key(id))
                    .map(|id| ("processor", id)),
            )
            .chain(
                p.exporters
                    .iter()
                    .filter(|id| {
                        !cfg.exporters.contains_key(id) && !cfg.connectors.contains_key(id)
                    })
                    .map(|id| ("exporter", id)),
            )
            .map(|(kind, id)| format!("{kind} {id}"))
            .collect::<Vec<_>>();
        if !missing.is_empty() {
            return Err(BuildError::Other(format!(
                "pipeline {pid} names components the config does not define: {}",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

/// Runs [`ProcessorConfig::prepare`] once for each processor some pipeline uses, all at once.
async fn prepare_processors(cfg: &Config, registry: &Registry) -> BTreeMap<ComponentId, Prepared> {
    let used: std::collections::BTreeSet<&ComponentId> = cfg
        .pipelines
        .iter()
        .flat_map(|(_, p)| p.processors.iter())
        .collect();
    let runs = used.into_iter().filter_map(|id| {
        let pc = cfg.processors.get(id)?;
        Some(async move { (id.clone(), pc.prepare(id, registry).await) })
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .collect()
}

/// Builds the admission gate from the memory limiters the pipelines use (smallest limit wins).
fn memory_gate(cfg: &Config, registry: &Arc<Registry>) -> Option<Arc<MemoryGate>> {
    let mut best: Option<(u64, u64, Duration)> = None;
    for (_, p) in &cfg.pipelines {
        for name in &p.processors {
            let Some(ProcessorConfig::MemoryLimiter(m)) = cfg.processors.get(name) else {
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
async fn close_stages(stages: Vec<(StageHandle, tokio::task::JoinHandle<()>)>, deadline: Instant) {
    for (h, task) in stages {
        h.close();
        if tokio::time::timeout_at(deadline.into(), task)
            .await
            .is_err()
        {
            tracing::warn!("stage did not flush before the shutdown deadline");
        }
    }
}

async fn drain_all(exporters: Vec<RunningExporter>, deadline: Instant) {
    futures_util::future::join_all(exporters.into_iter().map(|e| e.drain(deadline))).await;
}
