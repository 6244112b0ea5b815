//! # otelgw — an OpenTelemetry-native telemetry gateway
//!
//! Follow one request from socket to backend by reading the modules in the order data visits
//! them:
//!
//! 1. [`config`] — Collector-shaped YAML → typed, validated [`config::Config`].
//! 2. [`receivers`] — OTLP over gRPC ([`receivers::otlp_grpc`]) and HTTP
//!    ([`receivers::otlp_http`]): limits, decompression and decoding ([`receivers::decode`]),
//!    then the shared request path ([`receivers::handle`]).
//! 3. [`pipeline`] — fan-out to pipelines, processors in order ([`processors`]), fan-in to
//!    exporters.
//! 4. [`exporters`] — bounded sending queue, retries, and the exporters themselves
//!    ([`exporters::sending_queue`], [`exporters::otlp_grpc`], [`exporters::otlp_http`], …).
//! 5. [`telemetry`] — self-metrics with Collector-compatible names, health, logging.
//! 6. [`app`] — process lifecycle: start, SIGHUP reload, SIGTERM drain.
//!
//! The data model is the `opentelemetry-proto` prost structs, end to end ([`data`]).

pub mod admission;
pub mod allocator;
pub mod app;
pub mod cardinality;
pub mod component;
pub mod config;
pub mod consumer;
pub mod data;
pub mod encode;
pub mod exporters;
pub mod extensions;
pub mod grpc;
pub mod net;
pub mod pipeline;
pub mod processors;
pub mod receivers;
pub mod telemetry;
#[doc(hidden)]
pub mod testdata;
pub mod wire;
