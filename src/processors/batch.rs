//! `batch`: merges requests into batches and splits oversized ones, per pipeline.
//!
//! Contract: items leave in the order they came, inside their own resource and scope (a split
//! clones the resource/scope wrapper around the items it moves), never lost and never duplicated
//! (property-tested below). A batch is sent when it holds `send_batch_size` items (the size
//! trigger) or `timeout` after its first item arrived (the timeout trigger); batches above
//! `send_batch_max_size` are split. Requests that travel as protobuf bytes are batched by
//! concatenation and never cut: a piece sent under `send_batch_max_size` is as many whole
//! requests as fit, and only a request larger than the limit on its own is decoded and split.
//! With `metadata_keys`, requests are batched separately per distinct combination of those
//! request headers (the receiver's `include_metadata` must be on), at most
//! `metadata_cardinality_limit` combinations; a request past the limit is refused.
//!
//! Where it sits: the batch processor is a stage with its own bounded input queue (capacity
//! [`crate::pipeline::batch::INPUT_QUEUE`], full-policy `block`), run by the pipeline
//! ([`crate::pipeline::batch`]); this module is its config and contract. Processors listed before it run inline on the request
//! path; processors after it run in its flush task, followed by the exporters. Items it could
//! not hand on (an exporter refused them, or the gateway stopped) are counted as
//! `otelgw_dropped_items_total{component="batch",reason=…}` and logged.

use serde::{Deserialize, Serialize};

use crate::component::units::Duration;
use crate::component::Diagnostics;

/// `processors.batch`, with the Collector's keys and defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Send a batch as soon as it holds this many items (spans, data points, log records).
    pub send_batch_size: u64,
    /// Split batches above this many items (0 = no upper bound).
    pub send_batch_max_size: u64,
    /// Send a batch this long after its first item arrived, however small. `0` sends at once.
    pub timeout: Duration,
    /// Request headers (lowercase) whose values key separate batches.
    pub metadata_keys: Vec<String>,
    /// Most distinct `metadata_keys` value combinations at once.
    pub metadata_cardinality_limit: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: Duration::from_millis(200),
            metadata_keys: vec![],
            metadata_cardinality_limit: 1000,
        }
    }
}

impl BatchConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.send_batch_max_size > 0 && self.send_batch_max_size < self.send_batch_size {
            diag.error(
                format!("{path}.send_batch_max_size"),
                format!(
                    "must be 0 (no limit) or at least send_batch_size ({})",
                    self.send_batch_size
                ),
            );
        }
        if !self.metadata_keys.is_empty() && self.metadata_cardinality_limit == 0 {
            diag.error(
                format!("{path}.metadata_cardinality_limit"),
                "must be at least 1 with metadata_keys",
            );
        }
        for (i, k) in self.metadata_keys.iter().enumerate() {
            if k.is_empty() || http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                diag.error(
                    format!("{path}.metadata_keys[{i}]"),
                    format!("{k:?} is not a valid header name"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_below_size_is_invalid() {
        let mut d = Diagnostics::default();
        BatchConfig {
            send_batch_size: 100,
            send_batch_max_size: 10,
            ..Default::default()
        }
        .validate("processors.batch", &mut d);
        assert_eq!(d.errors[0].path, "processors.batch.send_batch_max_size");
    }
}
