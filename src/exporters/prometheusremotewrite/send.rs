//! Sharding, requests and retries (the delivery rules in the module docs of [`super`]): a
//! batch's points go to `num_consumers` shards by series, each shard's points are cut into
//! requests of at most `max_batch_size_bytes` (a point's series stay together), shards are sent
//! concurrently and a shard's requests in order, each request retried on its own.

use std::time::SystemTime;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

use super::series::PointSeries;
use super::wire::{body, MetricMetadata, WriteRequest};
use super::PrometheusRemoteWriteExporter;
use crate::exporters::retry::{classify_http_push, parse_retry_after, Backoff, ExportError};

/// One request of a shard and the OTLP points it carries.
pub struct Request {
    pub write: WriteRequest,
    pub points: u64,
    pub samples: u64,
}

/// Cuts a shard's points into requests of at most `max_bytes` encoded (a single point larger
/// than that goes alone), with the families' metadata when `metadata` is set.
pub fn requests(points: Vec<PointSeries>, max_bytes: usize, metadata: bool) -> Vec<Request> {
    let mut out = Vec::new();
    let mut cur = WriteRequest::default();
    let (mut size, mut n, mut samples) = (0usize, 0u64, 0u64);
    let mut families: Vec<MetricMetadata> = Vec::new();
    let mut flush = |cur: &mut WriteRequest,
                     families: &mut Vec<MetricMetadata>,
                     n: &mut u64,
                     samples: &mut u64,
                     size: &mut usize| {
        if cur.timeseries.is_empty() {
            return;
        }
        let mut write = std::mem::take(cur);
        if metadata {
            write.metadata = std::mem::take(families);
        }
        families.clear();
        out.push(Request {
            write,
            points: *n,
            samples: *samples,
        });
        (*n, *samples, *size) = (0, 0, 0);
    };
    for p in points {
        let series_len: usize = p.series.iter().map(|s| s.encoded_len() + 4).sum();
        let known = |families: &[MetricMetadata]| {
            !metadata
                || families
                    .iter()
                    .any(|m| m.metric_family_name == p.metadata.metric_family_name)
        };
        let meta_len = |families: &[MetricMetadata]| {
            if known(families) {
                0
            } else {
                p.metadata.encoded_len() + 4
            }
        };
        if size > 0 && size + series_len + meta_len(&families) > max_bytes {
            flush(&mut cur, &mut families, &mut n, &mut samples, &mut size);
        }
        size += series_len + meta_len(&families);
        n += u64::from(!is_info(&p));
        samples += p.series.len() as u64;
        if !known(&families) {
            families.push(p.metadata.clone());
        }
        cur.timeseries.extend(p.series);
    }
    flush(&mut cur, &mut families, &mut n, &mut samples, &mut size);
    out
}

/// `target_info` is not an OTLP point of the batch.
fn is_info(p: &PointSeries) -> bool {
    p.metadata.metric_family_name == "target_info"
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl PrometheusRemoteWriteExporter {
    /// Translates and sends one batch; returns the points that were not delivered.
    pub(super) async fn write(
        &self,
        req: &ExportMetricsServiceRequest,
        meta: &crate::data::RequestMeta,
    ) -> u64 {
        let n = self.cfg.remote_write_queue.num_consumers.max(1);
        let mut shards: Vec<Vec<PointSeries>> = (0..n).map(|_| Vec::new()).collect();
        let now = now_ms();
        let mut translated = 0u64;
        self.store.ingest_observed(req, &mut |applied| {
            if let Some(p) = self.settings.point(applied, now) {
                translated += p.series.len() as u64;
                let shard = (p.key % n as u64) as usize;
                if let Some(s) = shards.get_mut(shard) {
                    s.push(p);
                }
            }
        });
        self.c.translated.add(translated);
        let sends = shards.into_iter().filter(|s| !s.is_empty()).map(|points| {
            let reqs = requests(
                points,
                self.cfg.max_batch_size_bytes,
                self.cfg.send_metadata,
            );
            self.send_shard(reqs, meta)
        });
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .sum()
    }

    /// Sends a shard's requests in order, each with its own retries; returns the points not
    /// delivered.
    async fn send_shard(&self, reqs: Vec<Request>, meta: &crate::data::RequestMeta) -> u64 {
        let mut failed = 0;
        let mut stop = self.stop.subscribe();
        for r in reqs {
            let body = match body(&r.write) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    tracing::error!(error = %e, "remote write: snappy failed; request dropped");
                    self.c.failed_rejected.add(r.samples);
                    failed += r.points;
                    continue;
                }
            };
            let mut backoff = Backoff::new(&self.cfg.retry_on_failure);
            loop {
                if *stop.borrow() {
                    self.c.failed_shutdown.add(r.samples);
                    failed += r.points;
                    break;
                }
                let err = match self.send_once(body.clone(), meta).await {
                    Ok(()) => {
                        self.c.batches.inc();
                        break;
                    }
                    Err(e) => e,
                };
                if !err.is_retryable() {
                    self.c.failed_rejected.add(r.samples);
                    failed += r.points;
                    break;
                }
                let hint = match &err {
                    ExportError::Retryable { retry_after, .. } => *retry_after,
                    ExportError::Permanent { .. } => None,
                };
                let Some(delay) = backoff.next_delay(hint) else {
                    tracing::error!(endpoint = %self.cfg.endpoint, error = %err, samples = r.samples, "remote write: retries exhausted; samples dropped");
                    self.c.failed_exhausted.add(r.samples);
                    failed += r.points;
                    break;
                };
                tracing::debug!(endpoint = %self.cfg.endpoint, error = %err, delay_ms = delay.as_millis() as u64, "remote write failed; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            }
        }
        failed
    }

    /// One attempt.
    async fn send_once(
        &self,
        body: Bytes,
        meta: &crate::data::RequestMeta,
    ) -> Result<(), ExportError> {
        let mut req = self
            .client
            .post(&self.cfg.endpoint)
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .header("user-agent", concat!("otelgw/", env!("CARGO_PKG_VERSION")))
            .body(body);
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(a) = &self.auth {
            let mut h = reqwest::header::HeaderMap::new();
            a.apply_client(&mut h, meta);
            req = req.headers(h);
        }
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            ExportError::retryable(
                kind,
                format!("remote write to {} failed: {e}", self.cfg.endpoint),
            )
        })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let reason = resp.text().await.unwrap_or_default();
        let err = classify_http_push(status, retry_after, reason.trim());
        if !err.is_retryable() {
            let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
            if warned.insert(status) {
                tracing::error!(endpoint = %self.cfg.endpoint, status, reason = %reason.trim(), "remote write rejected (permanent; not retried; further rejections with this status are only counted)");
            }
        }
        Err(err)
    }
}
