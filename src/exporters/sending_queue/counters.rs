//! The sending queue's self-metrics, per signal (the Collector's `otelcol_exporter_*` names).

use crate::component::Signal;
use crate::telemetry::metrics::{names, Counter, Gauge, Registry};

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
            PerSignal {
                sent: reg.counter(&names::exporter_sent(s), "Items successfully sent to the destination.", &l),
                send_failed: reg.counter(
                    &names::exporter_send_failed(s),
                    "Items that failed to be sent (permanent error, retries exhausted, or rejected by the peer).",
                    &l,
                ),
                enqueue_failed: reg.counter(
                    &names::exporter_enqueue_failed(s),
                    "Items refused because the sending queue was full.",
                    &l,
                ),
                dropped_shutdown: reg.counter(
                    names::DROPPED_ITEMS,
                    "Items dropped by otelgw, by component and reason.",
                    &[("component", id), ("reason", "shutdown_timeout"), ("signal", s.as_str())],
                ),
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
        }
    }
    pub(super) fn of(&self, s: Signal) -> &PerSignal {
        &self.signals[idx(s)]
    }
}
