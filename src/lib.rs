//! # otelgw — an OpenTelemetry-native telemetry gateway
//!
//! Follow one request from socket to backend by reading the modules in the order data visits
//! them (ARCHITECTURE.md walks a traces and a metrics request file by file, with a vocabulary
//! table):
//!
//! 1. [`config`] — Collector-shaped YAML → typed, validated [`config::Config`].
//! 2. [`net`] — every listener's bind and accept loop; [`admission`] — the memory gate a
//!    request passes before it is read.
//! 3. [`receivers`] — OTLP over gRPC ([`receivers::otlp_grpc`]) and HTTP
//!    ([`receivers::otlp_http`]): limits, decompression, [`receivers::decode::check_or_decode`],
//!    then a receiver's entry into its pipelines ([`receivers::intake`]).
//! 4. [`pipeline`] — fan-out to pipelines, processors in order ([`processors`]), batch stages,
//!    fan-in to exporters ([`pipeline::chain`], [`pipeline::batch`]); the [`pipeline::Graph`]
//!    assembles and drains everything.
//! 5. [`exporters`] — the sending queue ([`exporters::sending_queue`]: bounded queue, consumers,
//!    retries) and the exporters themselves ([`exporters::otlp_grpc`], [`exporters::otlp_http`],
//!    [`exporters::prometheus`], [`exporters::loki`], …).
//! 6. [`telemetry`] — self-metrics with Collector-compatible names, health, logging.
//! 7. [`app`] — process lifecycle: start, SIGHUP reload, SIGTERM drain.
//!
//! At the bottom of the import graph: [`component`] (ids, signals, diagnostics, build errors),
//! [`consumer`] (the consume contract), [`data`] (the data model: `opentelemetry-proto`'s prost
//! structs end to end, as [`data::Payload`] on the way and [`data::Outgoing`] in exporter
//! queues), [`grpc`] (status, codec, zero-copy unary call).

pub mod admission;
pub mod allocator;
pub mod app;
pub mod cardinality;
pub mod code_pages;
pub mod component;
pub mod config;
pub mod connectors;
pub mod consumer;
pub mod data;
pub mod encode;
pub mod exporters;
pub mod extensions;
pub mod grpc;
pub mod net;
pub mod ottl;
pub mod pipeline;
pub mod processors;
pub mod receivers;
pub mod telemetry;
#[doc(hidden)]
pub mod testdata;
pub mod wire;
