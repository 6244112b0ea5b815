//! The sending queue's self-metrics, per signal (the Collector's `otelcol_exporter_*` names).

use crate::component::Signal;
use crate::telemetry::metrics::{
    dropped_items, names, Counter, ExporterCounters, Gauge, Histogram, Registry,
};

/// Milliseconds: the bounds of `otelgw_exporter_send_duration_milliseconds`.
pub(super) const SEND_DURATION_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

pub(super) struct PerSignal {
    pub(super) sent: Counter,
    pub(super) send_failed: Counter,
    pub(super) enqueue_failed: Counter,
    pub(super) dropped_shutdown: Counter,
}

pub(super) struct Metrics {
    pub(super) signals: [PerSignal; 3],
    pub(super) queue_size: Gauge,
    pub(super) retries: Counter,
    /// How long each export attempt took, answered or failed.
    pub(super) send_duration: Histogram,
}

pub(super) fn idx(s: Signal) -> usize {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

impl Metrics {
    pub(super) fn new(reg: &Registry, id: &str, capacity: u64) -> Metrics {
        let per = |s: Signal| {
            let l = [("exporter", id)];
            let ExporterCounters { sent, send_failed } = ExporterCounters::new(reg, id, s);
            PerSignal {
                sent,
                send_failed,
                enqueue_failed: reg.counter(
                    &names::exporter_enqueue_failed(s),
                    "Items refused because the sending queue was full.",
                    &l,
                ),
                dropped_shutdown: dropped_items(reg, id, "shutdown_timeout", s),
            }
        };
        let l = [("exporter", id)];
        reg.gauge(
            names::EXPORTER_QUEUE_CAPACITY,
            "Capacity of the sending queue, in the unit of its sizer (requests, items or bytes).",
            &l,
        )
        .set(capacity as i64);
        Metrics {
            signals: [per(Signal::Traces), per(Signal::Metrics), per(Signal::Logs)],
            queue_size: reg.gauge(
                names::EXPORTER_QUEUE_SIZE,
                "Size of the sending queue, in the unit of its sizer (persistent: not yet acked).",
                &l,
            ),
            retries: reg.counter(
                names::EXPORTER_RETRIES,
                "Export attempts that were retried.",
                &l,
            ),
            send_duration: reg.histogram(
                names::EXPORTER_SEND_DURATION,
                "Milliseconds each export attempt took (answered or failed).",
                SEND_DURATION_BUCKETS,
                &l,
            ),
        }
    }
    pub(super) fn of(&self, s: Signal) -> &PerSignal {
        &self.signals[idx(s)]
    }
}
