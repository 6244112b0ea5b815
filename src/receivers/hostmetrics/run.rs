//! Running `hostmetrics`: one task per receiver waits `initial_delay`, then every
//! `collection_interval` runs every scraper (on a blocking thread: they read files), puts each
//! scraper's metrics under its own instrumentation scope (the Collector's scraper scope names)
//! and each process under its own resource, and hands the collection to the pipelines. The
//! receiver's stop ends the task at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::watch;

use super::scrapers::{
    cpu, disk, filesystem, load, memory, network, paging, process, processes, system, Ctx, Output,
};
use super::HostMetricsConfig;
use crate::component::{BuildError, Signal};
use crate::data::{metric_point_count, unix_nanos, Telemetry};
use crate::receivers::intake::Intake;
use crate::receivers::{stopped, ReceiverContext};
use crate::telemetry::metrics::{names, Counter};

/// The Collector's scope name for a scraper's metrics.
pub fn scope_name(scraper: &str) -> String {
    format!("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/{scraper}scraper")
}

/// Any scraper, as the task runs it.
trait Scrape: Send {
    fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String>;
    /// Problems of the last scrape that did not fail it (a process that could not be read).
    fn partial_errors(&self) -> &[String] {
        &[]
    }
}

macro_rules! scrape_impl {
    ($($m:ident),*) => {$(
        impl Scrape for $m::Scraper {
            fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
                $m::Scraper::scrape(self, ctx)
            }
        }
    )*};
}
scrape_impl!(cpu, disk, filesystem, load, memory, network, paging, processes, system);

impl Scrape for process::Scraper {
    fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        process::Scraper::scrape(self, ctx)
    }
    fn partial_errors(&self) -> &[String] {
        self.errors()
    }
}

struct Named {
    name: &'static str,
    scraper: Box<dyn Scrape>,
    scraped: Counter,
    errored: Counter,
    last_error: Option<String>,
    partial_logged: bool,
}

/// Builds the scrapers (filters compiled here) and starts the receiver's task.
pub fn spawn(
    cfg: &HostMetricsConfig,
    ctx: &ReceiverContext,
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, BuildError> {
    let id = ctx.id.to_string();
    let mut list: Vec<(&'static str, Box<dyn Scrape>)> = Vec::new();
    let s = &cfg.scrapers;
    let err = |name: &str, e: String| BuildError::Other(format!("scrapers.{name}: {e}"));
    macro_rules! add {
        ($($m:ident),*) => {$(
            if let Some(c) = &s.$m {
                list.push((stringify!($m), Box::new($m::Scraper::new(c).map_err(|e| err(stringify!($m), e))?)));
            }
        )*};
    }
    add!(cpu, memory, load, disk, filesystem, network, paging, processes, process, system);
    let counter = |metric: &str, help: &'static str, scraper: &str| {
        ctx.registry.counter(
            metric,
            help,
            &[("receiver", id.as_str()), ("scraper", scraper)],
        )
    };
    let scrapers: Vec<Named> = list
        .into_iter()
        .map(|(name, scraper)| Named {
            name,
            scraper,
            scraped: counter(
                names::SCRAPER_SCRAPED_METRIC_POINTS,
                "Metric points successfully scraped.",
                name,
            ),
            errored: counter(
                names::SCRAPER_ERRORED_METRIC_POINTS,
                "Metric points that were unable to be scraped.",
                name,
            ),
            last_error: None,
            partial_logged: false,
        })
        .collect();
    let run = Run {
        intake: Intake::new(&ctx.registry, &id, "", Signal::Metrics, ctx.metrics.clone()),
        gate: ctx.gate.clone(),
        root: cfg.root(),
        interval: cfg
            .collection_interval
            .get()
            .max(std::time::Duration::from_millis(1)),
        initial_delay: cfg.initial_delay.get(),
        scrapers: Arc::new(Mutex::new(scrapers)),
        id,
    };
    tracing::info!(receiver = %run.id, root = %run.root.display(), interval = ?run.interval, "hostmetrics receiver started");
    Ok(tokio::spawn(run.run(stop)))
}

struct Run {
    id: String,
    intake: Intake,
    gate: Option<Arc<crate::admission::MemoryGate>>,
    root: PathBuf,
    interval: std::time::Duration,
    initial_delay: std::time::Duration,
    scrapers: Arc<Mutex<Vec<Named>>>,
}

/// The host's boot time from `/proc/stat` (`btime`), in Unix nanoseconds.
pub fn boot_ns(root: &std::path::Path) -> u64 {
    std::fs::read_to_string(root.join("proc/stat"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .map(|s| s.saturating_mul(1_000_000_000))
        .unwrap_or(0)
}

/// Runs every scraper once: the request (`None` when nothing was collected).
fn collect(
    root: &std::path::Path,
    scrapers: &mut [Named],
    receiver: &str,
) -> Option<ExportMetricsServiceRequest> {
    let ctx = Ctx {
        root,
        now_ns: unix_nanos(SystemTime::now()),
        boot_ns: boot_ns(root),
    };
    // metrics per resource (host-wide: no attributes), in scraper order
    let mut by_resource: Vec<(Vec<KeyValue>, Vec<ScopeMetrics>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in scrapers.iter_mut() {
        match s.scraper.scrape(&ctx) {
            Ok(out) => {
                let partial = s.scraper.partial_errors();
                if let (Some(first), false) = (partial.first(), s.partial_logged) {
                    // once: which processes cannot be read changes every collection
                    s.partial_logged = true;
                    tracing::warn!(receiver = %receiver, scraper = s.name, processes = partial.len(), error = %first, "hostmetrics: some processes could not be read (mute_process_*_error silences this; logged once)");
                }
                if s.last_error.take().is_some() {
                    tracing::info!(receiver = %receiver, scraper = s.name, "hostmetrics: scraper works again");
                }
                for (attrs, metrics) in out {
                    let points: u64 = metrics.iter().map(metric_point_count).sum();
                    s.scraped.add(points);
                    add(&mut by_resource, &mut index, attrs, s.name, metrics);
                }
            }
            Err(e) => {
                s.errored.inc();
                if s.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(receiver = %receiver, scraper = s.name, error = %e, "hostmetrics: scraper failed");
                    s.last_error = Some(e);
                }
            }
        }
    }
    if by_resource.is_empty() {
        return None;
    }
    Some(ExportMetricsServiceRequest {
        resource_metrics: by_resource
            .into_iter()
            .map(|(attributes, scope_metrics)| ResourceMetrics {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_metrics,
                ..Default::default()
            })
            .collect(),
    })
}

fn add(
    by_resource: &mut Vec<(Vec<KeyValue>, Vec<ScopeMetrics>)>,
    index: &mut HashMap<String, usize>,
    attrs: Vec<KeyValue>,
    scraper: &str,
    metrics: Vec<Metric>,
) {
    if metrics.is_empty() {
        return;
    }
    let key = format!("{attrs:?}");
    let i = *index.entry(key).or_insert_with(|| {
        by_resource.push((attrs, Vec::new()));
        by_resource.len() - 1
    });
    if let Some((_, scopes)) = by_resource.get_mut(i) {
        scopes.push(ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: scope_name(scraper),
                version: env!("CARGO_PKG_VERSION").to_string(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        });
    }
}

impl Run {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            _ = tokio::time::sleep(self.initial_delay) => {}
        }
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                _ = tick.tick() => {}
            }
            let (root, scrapers, id) = (self.root.clone(), self.scrapers.clone(), self.id.clone());
            let job = tokio::task::spawn_blocking(move || {
                let mut list = scrapers.lock().unwrap_or_else(|p| p.into_inner());
                collect(&root, &mut list, &id)
            });
            let req = tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                r = job => r.ok().flatten(),
            };
            if let Some(req) = req {
                self.deliver(req).await;
            }
        }
    }

    async fn deliver(&self, req: ExportMetricsServiceRequest) {
        let data = Telemetry::Metrics(req);
        if let Err(e) = self.intake.offer(data, self.gate.as_ref()).await {
            tracing::warn!(receiver = %self.id, reason = %e, "hostmetrics: this collection was not taken");
        }
    }
}
