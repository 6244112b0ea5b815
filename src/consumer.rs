//! The consume contract every component speaks (the Collector's `consumer` package): what a
//! receiver, a pipeline, a processor or an exporter answers when it is handed data.
//!
//! - `Ok(Rejections)`: the data was taken; [`Rejections`] says how many items were removed on
//!   the way and why (the receiver turns it into OTLP `partial_success`).
//! - `Err(ConsumeError)`: the data was not taken; the variant says whether the client should
//!   retry ([`ConsumeError::Refused`], [`ConsumeError::ShuttingDown`]) or not.
//!
//! This module sits at the bottom of the import graph: it depends on nothing in the crate.

use std::time::Duration;

/// Why data could not be taken.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsumeError {
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
    /// The request cannot be taken as it is (e.g. a batching key past its cardinality limit);
    /// retrying the same request will not help.
    #[error("{message}")]
    Invalid { message: String },
    /// The gateway is stopping.
    #[error("otelgw is shutting down")]
    ShuttingDown,
}

/// Items removed on the way, with the reasons the client should hear (each reason once).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rejections {
    pub count: u64,
    pub reasons: Vec<String>,
}

impl Rejections {
    /// Records `count` items removed for `reason` (nothing when `count` is 0).
    pub fn add(&mut self, count: u64, reason: impl Into<String>) {
        if count > 0 {
            self.count += count;
            self.note(reason.into());
        }
    }

    /// Adds another set of rejections (counts summed, reasons kept once, in order).
    pub fn merge(&mut self, other: Rejections) {
        self.count += other.count;
        for r in other.reasons {
            self.note(r);
        }
    }

    fn note(&mut self, reason: String) {
        if !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }

    /// The reasons as one message.
    pub fn message(&self) -> String {
        self.reasons.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_counts_and_keeps_each_reason_once_in_order() {
        let mut a = Rejections::default();
        a.add(2, "bad id");
        a.add(0, "never");
        let mut b = Rejections::default();
        b.add(1, "over limit");
        b.add(3, "bad id");
        a.merge(b);
        assert_eq!(a.count, 6);
        assert_eq!(a.reasons, vec!["bad id", "over limit"]);
        assert_eq!(a.message(), "bad id; over limit");
    }
}
