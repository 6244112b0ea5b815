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

use crate::config::{ComponentId, Config, PipelineId};
use crate::data::{Batch, RequestMeta, Signal, Telemetry};
use crate::exporters::runner::{ExporterHandle, RunningExporter};
use crate::exporters::{BuildError, QueueConfig, RetryConfig};
use crate::processors::{Processor, Rejections};
use crate::receivers::RunningReceiver;
use crate::telemetry::metrics::Registry;

/// Why a pipeline could not take a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    /// Overload (a full queue with `drop_newest`, the memory gate): the client should retry.
    #[error("{message}")]
    Refused {
        component: String,
        retry_after: Duration,
        message: String,
    },
    /// An inline export (sending queue disabled) failed.
    #[error("export through {component} failed: {message}")]
    ExportFailed {
        component: String,
        retryable: bool,
        message: String,
    },
    /// The gateway is stopping.
    #[error("otelgw is shutting down")]
    ShuttingDown,
}

/// One `service.pipelines.<id>`.
pub struct Pipeline {
    pub id: PipelineId,
    processors: Vec<Arc<dyn Processor>>,
    exporters: Vec<ExporterHandle>,
}

impl Pipeline {
    /// Runs processors, then hands the result to every exporter. Returns what processors
    /// rejected (for `partial_success`).
    pub async fn consume(
        &self,
        mut data: Telemetry,
        meta: Arc<RequestMeta>,
    ) -> Result<Rejections, PipelineError> {
        let mut rejected = Rejections::default();
        for p in &self.processors {
            p.process(&mut data, &meta, &mut rejected);
        }
        if data.is_empty() {
            return Ok(rejected);
        }
        let n = self.exporters.len();
        for (i, e) in self.exporters.iter().enumerate() {
            if i + 1 == n {
                e.consume(Batch::new(data, meta)).await?;
                break;
            }
            e.consume(Batch::new(data.clone(), meta.clone())).await?;
        }
        Ok(rejected)
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

    /// Sends `data` into every pipeline. Rejections are summed; the first error wins.
    pub async fn consume(
        &self,
        data: Telemetry,
        meta: Arc<RequestMeta>,
    ) -> Result<Rejections, PipelineError> {
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
            total.count += r.count;
            for reason in r.reasons {
                if !total.reasons.contains(&reason) {
                    total.reasons.push(reason);
                }
            }
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
    exporters: Vec<RunningExporter>,
}

impl Graph {
    /// Builds and starts everything the config's pipelines use.
    pub async fn start(cfg: &Config, registry: &Arc<Registry>) -> Result<Graph, BuildError> {
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
            let exporter = match ecfg.build(id) {
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
            let running =
                RunningExporter::start(&id.to_string(), exporter, &queue, retry, registry);
            handles.insert(id.to_string(), running.handle.clone());
            exporters.push(running);
        }

        let mut pipelines: Vec<(PipelineId, Vec<String>, Arc<Pipeline>)> = Vec::new();
        for (pid, pcfg) in &cfg.pipelines {
            let processors = pcfg
                .processors
                .iter()
                .filter_map(|p| ComponentId::parse(p).ok())
                .filter_map(|id| cfg.processors.get(&id).map(|c| c.build()))
                .collect();
            let ex = pcfg
                .exporters
                .iter()
                .filter_map(|e| handles.get(e).cloned())
                .collect();
            let pipeline = Arc::new(Pipeline {
                id: pid.clone(),
                processors,
                exporters: ex,
            });
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
                    drain_all(exporters, Instant::now()).await;
                    return Err(BuildError::Other(format!("receiver {id}: {e}")));
                }
            }
        }
        Ok(Graph {
            receivers,
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
        drain_all(self.exporters, deadline).await;
    }
}

async fn drain_all(exporters: Vec<RunningExporter>, deadline: Instant) {
    futures_util::future::join_all(exporters.into_iter().map(|e| e.drain(deadline))).await;
}
