//! The integration tests, as one test binary: each module is one area, and all of them share
//! the harness in `common` (the real `otelgw` binary on free loopback ports, a scriptable fake
//! HTTP backend). One binary instead of one per file: the otelgw crate and the dev-dependencies
//! are linked once, not once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

mod bad_input;
mod batch;
mod cardinality;
mod cli_lifecycle;
mod compat;
mod connectors;
mod deploy;
mod edge_security;
mod exporter_faults;
mod exporter_tls;
mod filelog;
mod fuzz_replay;
mod hostmetrics;
mod httpcheck;
mod loadbalancing;
mod loki;
mod memory_limiter;
mod module_graph;
mod otlp_export;
mod ottl;
mod pass_through;
mod persistent_queue;
mod probabilistic_sampler;
mod prometheus;
mod prometheus_endpoint;
mod prometheus_receiver;
mod remote_write;
mod resourcedetection;
mod sdk_python;
mod sdk_rust;
mod self_metrics;
mod tail_sampling;
mod zpages;
