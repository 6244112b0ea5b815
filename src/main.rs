//! The `otelgw` command line. Everything else lives in the library.
//! (The CLI prints its answers to stdout by design.)
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use otelgw::app::{self, ConfigSource};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// otelgw: an OpenTelemetry-native telemetry gateway.
///
/// Receives OTLP (gRPC :4317, HTTP :4318), runs it through Collector-style pipelines and exports
/// it. Without --config it runs the embedded quickstart config (OTLP in, debug exporter out).
#[derive(Parser)]
#[command(name = "otelgw", version, about, long_about)]
struct Cli {
    /// Config file (Collector-shaped YAML). Repeat to deep-merge several; later files win.
    #[arg(long = "config", short = 'c', global = true, value_name = "FILE")]
    config: Vec<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config, print every problem with its path, exit non-zero if invalid.
    Validate,
    /// Print the resolved config (env expanded, files merged, defaults filled, secrets redacted).
    PrintConfig,
    /// List the component types this build has.
    Components,
    /// Probe a running otelgw's `/healthz` on the admin address of the config (or `--url`);
    /// exit 0 when it answers 200. For container health checks (distroless has no curl).
    Healthcheck {
        /// Probe this URL instead (`http://host:port/path`).
        #[arg(long)]
        url: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
}

fn source(cli: &Cli) -> ConfigSource {
    if cli.config.is_empty() {
        ConfigSource::Embedded
    } else {
        ConfigSource::Files(cli.config.clone())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let src = source(&cli);
    match cli.command {
        Some(Command::Components) => {
            println!(
                "receivers:  {}",
                otelgw::receivers::RECEIVER_TYPES.join(", ")
            );
            println!(
                "processors: {}",
                otelgw::processors::PROCESSOR_TYPES.join(", ")
            );
            println!(
                "exporters:  {}",
                otelgw::exporters::EXPORTER_TYPES.join(", ")
            );
            println!(
                "extensions: {}",
                otelgw::extensions::EXTENSION_TYPES.join(", ")
            );
            ExitCode::SUCCESS
        }
        Some(Command::Healthcheck { url, timeout }) => {
            let url = match url {
                Some(u) => u,
                None => match src.load() {
                    Ok(cfg) => format!(
                        "http://{}/healthz",
                        otelgw::telemetry::admin::probe_address(
                            &cfg.service.telemetry.metrics.address
                        )
                    ),
                    Err(e) => {
                        eprint!("{e}");
                        return ExitCode::from(1);
                    }
                },
            };
            match otelgw::telemetry::admin::probe(&url, std::time::Duration::from_secs(timeout)) {
                Ok(()) => {
                    println!("ok: {url}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("unhealthy: {url}: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Command::Validate) => match src.load() {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    eprintln!("warning: {w}");
                }
                println!("config is valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint!("{e}");
                ExitCode::from(1)
            }
        },
        Some(Command::PrintConfig) => match src.load() {
            Ok(cfg) => {
                print!("{}", cfg.to_redacted_yaml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint!("{e}");
                ExitCode::from(1)
            }
        },
        None => {
            let cfg = match src.load() {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{e}");
                    return ExitCode::from(1);
                }
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match rt.block_on(app::run(src, cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("otelgw: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
