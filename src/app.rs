//! The running process: admin listener, extensions and the pipeline graph, driven by signals.
//!
//! - SIGTERM / SIGINT: stop receivers (in-flight requests finish), drain exporter queues within
//!   `service.shutdown_timeout`, exit.
//! - SIGHUP: load and validate the config files again. Invalid: log every problem and keep
//!   running the old config. Valid: drain the old graph and start the new one; if the new one
//!   cannot start (say, a port is taken), log why and start the old one again.
//!
//! The admin listener and logging are set once at start; a reload that changes
//! `service.telemetry` logs that a restart is needed for that part.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cardinality::report::Board;
use crate::config::{self, Config, ConfigError};
use crate::exporters::BuildError;
use crate::extensions::ExtensionConfig;
use crate::pipeline::Graph;
use crate::telemetry::admin::{self, Routes};
use crate::telemetry::metrics::{names, Registry};
use crate::telemetry::Health;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot start: {0}")]
    Build(#[from] BuildError),
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
}

/// Where the config comes from: files (deep-merged) or the embedded quickstart.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    Files(Vec<PathBuf>),
    Embedded,
}

impl ConfigSource {
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::Files(p) => config::load_files(p),
            ConfigSource::Embedded => config::load_sources(
                &[config::Source {
                    name: "embedded quickstart config".into(),
                    text: config::QUICKSTART_YAML.to_string(),
                }],
                &|k| std::env::var(k).ok(),
            ),
        }
    }
}

/// A running graph plus the extensions that go with it.
struct Running {
    graph: Graph,
    ext_stop: tokio::sync::watch::Sender<bool>,
    ext_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn start(
        cfg: &Config,
        registry: &Arc<Registry>,
        health: &Arc<Health>,
        board: &Arc<Board>,
    ) -> Result<Running, BuildError> {
        let (ext_stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut ext_tasks = Vec::new();
        for (id, ext) in cfg.started_extensions() {
            match ext {
                ExtensionConfig::HealthCheck(h) => {
                    let tls = h.tls.as_ref().map(|t| t.server()).transpose()?;
                    let edge = crate::net::Edge::new(id.to_string(), Some(registry)).with_tls(tls);
                    let listener = crate::net::bind(&h.endpoint)?;
                    tracing::info!(extension = %id, address = %h.endpoint, "health check listening");
                    let routes = Routes {
                        registry: None,
                        cardinality: None,
                        health: health.clone(),
                        live_path: Some(h.path.clone()),
                    };
                    ext_tasks.push(admin::serve(edge, listener, routes, stop_rx.clone()));
                }
                ExtensionConfig::Zpages(z) => {
                    let edge = crate::net::Edge::new(id.to_string(), Some(registry));
                    let listener = crate::net::bind(&z.endpoint)?;
                    tracing::info!(extension = %id, address = %z.endpoint, "zpages listening: /debug/servicez /debug/pipelinez");
                    let pages = Arc::new(zpages_for(cfg, registry, board));
                    ext_tasks.push(crate::extensions::zpages::serve(
                        edge,
                        listener,
                        pages,
                        stop_rx.clone(),
                    ));
                }
                ExtensionConfig::Pprof(p) => {
                    let edge = crate::net::Edge::new(id.to_string(), Some(registry));
                    let listener = crate::net::bind(&p.endpoint)?;
                    tracing::info!(extension = %id, address = %p.endpoint, "pprof listening: /debug/pprof/profile?seconds=N");
                    ext_tasks.push(crate::extensions::pprof::serve(
                        edge,
                        listener,
                        stop_rx.clone(),
                    ));
                }
                // Nothing to run: exporters open their queues in its directory; authenticators
                // are built with the pipelines that use them.
                ExtensionConfig::FileStorage(_)
                | ExtensionConfig::BearerTokenAuth(_)
                | ExtensionConfig::BasicAuth(_)
                | ExtensionConfig::HeadersSetter(_) => {}
            }
        }
        match Graph::start(cfg, registry, board).await {
            Ok(graph) => {
                health.set_gate(graph.gate());
                Ok(Running {
                    graph,
                    ext_stop,
                    ext_tasks,
                })
            }
            Err(e) => {
                let _ = ext_stop.send(true);
                for t in ext_tasks {
                    let _ = t.await;
                }
                Err(e)
            }
        }
    }

    async fn stop(self, timeout: Duration) {
        self.graph.shutdown(timeout).await;
        let _ = self.ext_stop.send(true);
        for t in self.ext_tasks {
            let _ = t.await;
        }
    }
}

/// Startup's code does not run again: once the graph has settled (2 s), its pages are handed
/// back (`code_pages.rs`). Called after start and after each reload.
fn release_startup_code_later() {
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        match tokio::task::spawn_blocking(crate::code_pages::release_startup_code).await {
            Ok(Ok(bytes)) => tracing::debug!(bytes, "released startup code pages"),
            Ok(Err(e)) => tracing::debug!(error = %e, "startup code pages not released"),
            Err(_) => {}
        }
    });
}

/// When this process started (for zpages' uptime).
static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

/// What zpages shows of a config.
fn zpages_for(
    cfg: &Config,
    registry: &Arc<Registry>,
    board: &Arc<Board>,
) -> crate::extensions::zpages::Pages {
    use crate::extensions::zpages::{Pages, PipelineView};
    let ids = |v: &[crate::component::ComponentId]| v.iter().map(|i| i.to_string()).collect();
    let started: Vec<String> = cfg
        .started_extensions()
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    Pages {
        registry: registry.clone(),
        board: board.clone(),
        started: *STARTED.get_or_init(std::time::SystemTime::now),
        pipelines: cfg
            .pipelines
            .iter()
            .map(|(id, p)| PipelineView {
                id: id.to_string(),
                signal: id.signal,
                receivers: ids(&p.receivers),
                processors: ids(&p.processors),
                exporters: ids(&p.exporters),
            })
            .collect(),
        extensions: cfg
            .extensions
            .keys()
            .map(|id| (id.to_string(), started.contains(&id.to_string())))
            .collect(),
        components: vec![
            ("receivers", cfg.receivers.len()),
            ("processors", cfg.processors.len()),
            ("exporters", cfg.exporters.len()),
            ("extensions", cfg.extensions.len()),
        ],
    }
}

fn log_warnings(cfg: &Config) {
    for w in &cfg.warnings {
        tracing::warn!(path = %w.path, "config: {}", w.message);
    }
}

/// The configured self-metrics level (validation checked the spelling).
fn metrics_level(cfg: &Config) -> crate::telemetry::metrics::Level {
    crate::telemetry::metrics::Level::parse(&cfg.service.telemetry.metrics.level)
        .unwrap_or(crate::telemetry::metrics::Level::Normal)
}

/// Runs until SIGTERM / SIGINT.
pub async fn run(source: ConfigSource, initial: Config) -> Result<(), AppError> {
    use tokio::signal::unix::{signal, SignalKind};
    let registry = Registry::new();
    let health = Arc::new(Health::default());
    // every running cardinality tracker, for /debug/cardinality (survives reloads; a graph's
    // trackers leave it when the graph is dropped)
    let board = Arc::new(Board::default());
    crate::telemetry::logging::init(&initial.service.telemetry.logs);
    let _ = STARTED.get_or_init(std::time::SystemTime::now);
    log_warnings(&initial);
    registry.set_level(metrics_level(&initial));
    registry
        .gauge(
            names::PROCESS_START_TIME,
            "Unix time the process started.",
            &[],
        )
        .set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        );

    let (admin_stop, admin_rx) = tokio::sync::watch::channel(false);
    let admin_task = if initial.service.telemetry.metrics.level != "none" {
        let addr = &initial.service.telemetry.metrics.address;
        let listener = crate::net::bind(addr)?;
        tracing::info!(address = %addr, "admin listener: /metrics /healthz /readyz");
        Some(admin::serve(
            crate::net::Edge::new("admin", Some(&registry)),
            listener,
            Routes {
                registry: Some(registry.clone()),
                cardinality: Some(board.clone()),
                health: health.clone(),
                live_path: None,
            },
            admin_rx,
        ))
    } else {
        None
    };
    // periodic readers: self-metrics pushed by OTLP (admin_rx's sender stops them too)
    let push_resource = crate::telemetry::push::resource(&initial.service.telemetry.resource);
    let push_tasks: Vec<_> = initial
        .service
        .telemetry
        .metrics
        .readers
        .iter()
        .filter_map(|r| r.periodic.as_ref())
        .filter_map(|p| {
            crate::telemetry::push::spawn(
                p,
                registry.clone(),
                push_resource.clone(),
                admin_stop.subscribe(),
            )
        })
        .collect();

    let mut current = initial;
    let mut running = Running::start(&current, &registry, &health, &board).await?;
    health.set_running(true);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "otelgw started");
    release_startup_code_later();

    let mut term = signal(SignalKind::terminate()).map_err(AppError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AppError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(AppError::Signal)?;
    let reloads_ok = registry.counter(
        names::CONFIG_RELOADS,
        "Config reloads by result.",
        &[("result", "applied")],
    );
    let reloads_bad = registry.counter(
        names::CONFIG_RELOADS,
        "Config reloads by result.",
        &[("result", "rejected")],
    );
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("received SIGTERM; draining"); break; }
            _ = int.recv() => { tracing::info!("received SIGINT; draining"); break; }
            _ = hup.recv() => {
                tracing::info!("received SIGHUP; reloading config");
                let next = match source.load() {
                    Ok(c) => c,
                    Err(e) => {
                        reloads_bad.inc();
                        for issue in &e.errors {
                            tracing::error!(path = %issue.path, "config reload rejected: {}", issue.message);
                        }
                        tracing::error!(errors = e.errors.len(), "new config is invalid; keeping the running config");
                        continue;
                    }
                };
                log_warnings(&next);
                if next.service.telemetry.metrics.address != current.service.telemetry.metrics.address
                    || next.service.telemetry.logs.level != current.service.telemetry.logs.level {
                    tracing::warn!("service.telemetry changes take effect at the next restart");
                }
                health.set_running(false);
                running.stop(current.service.shutdown_timeout.get()).await;
                match Running::start(&next, &registry, &health, &board).await {
                    Ok(r) => {
                        running = r;
                        current = next;
                        registry.set_level(metrics_level(&current));
                        reloads_ok.inc();
                        tracing::info!("config reloaded");
                    }
                    Err(e) => {
                        reloads_bad.inc();
                        tracing::error!(error = %e, "new config could not start; restarting the previous one");
                        running = Running::start(&current, &registry, &health, &board).await?;
                    }
                }
                health.set_running(true);
                // the reload ran startup code again
                release_startup_code_later();
            }
        }
    }
    health.set_running(false);
    running.stop(current.service.shutdown_timeout.get()).await;
    let _ = admin_stop.send(true);
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    for t in push_tasks {
        // the last push is bounded by its own timeout
        let _ = t.await;
    }
    tracing::info!("otelgw stopped");
    Ok(())
}
