//! Self-metrics: a small typed registry rendered as Prometheus text 0.0.4.
//!
//! Names follow the OpenTelemetry Collector (`otelcol_receiver_accepted_spans`, …) so existing
//! dashboards work; otelgw's own metrics start with `otelgw_`. Every name lives in [`names`].
//! Counters and gauges are atomics handed out once at build time: the hot path does one relaxed
//! atomic add and never touches the registry. Asking twice for the same name and labels returns
//! the same cell, so counts survive a config reload.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::data::Signal;

/// Metric names, in one place.
pub mod names {
    use crate::data::Signal;

    pub fn receiver_accepted(s: Signal) -> String {
        format!("otelcol_receiver_accepted_{}", s.item_noun())
    }
    pub fn receiver_refused(s: Signal) -> String {
        format!("otelcol_receiver_refused_{}", s.item_noun())
    }
    pub fn exporter_sent(s: Signal) -> String {
        format!("otelcol_exporter_sent_{}", s.item_noun())
    }
    pub fn exporter_send_failed(s: Signal) -> String {
        format!("otelcol_exporter_send_failed_{}", s.item_noun())
    }
    pub fn exporter_enqueue_failed(s: Signal) -> String {
        format!("otelcol_exporter_enqueue_failed_{}", s.item_noun())
    }
    pub fn processor_incoming(s: Signal) -> String {
        format!("otelcol_processor_incoming_{}", s.item_noun())
    }
    pub fn processor_outgoing(s: Signal) -> String {
        format!("otelcol_processor_outgoing_{}", s.item_noun())
    }
    pub const EXPORTER_QUEUE_SIZE: &str = "otelcol_exporter_queue_size";
    pub const EXPORTER_QUEUE_CAPACITY: &str = "otelcol_exporter_queue_capacity";
    pub const RECEIVER_REQUESTS: &str = "otelgw_receiver_requests";
    pub const DROPPED_ITEMS: &str = "otelgw_dropped_items";
    pub const EXPORTER_RETRIES: &str = "otelgw_exporter_retries";
    pub const CONFIG_RELOADS: &str = "otelgw_config_reloads";
    pub const PROCESS_START_TIME: &str = "otelcol_process_start_time_seconds";
}

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

enum Cell {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<AtomicI64>),
}

struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<Labels, Cell>,
}

/// A monotonic counter.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
    pub fn inc(&self) {
        self.add(1)
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (queue sizes, states).
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed)
    }
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The process-wide self-metrics registry.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<String, Family>>,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    pub fn counter(
        &self,
        name: &str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Counter {
        match self.cell(name, help, Kind::Counter, labels) {
            Some(Cell::Counter(c)) => Counter(c),
            // A name registered twice with different kinds is a programming error; hand out a
            // detached cell rather than panic, so the process keeps running.
            _ => Counter::default(),
        }
    }

    pub fn gauge(&self, name: &str, help: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        match self.cell(name, help, Kind::Gauge, labels) {
            Some(Cell::Gauge(g)) => Gauge(g),
            _ => Gauge::default(),
        }
    }

    fn cell(
        &self,
        name: &str,
        help: &'static str,
        kind: Kind,
        labels: &[(&'static str, &str)],
    ) -> Option<Cell> {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name.to_string()).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            return None;
        }
        let key: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let cell = family.series.entry(key).or_insert_with(|| match kind {
            Kind::Counter => Cell::Counter(Arc::default()),
            Kind::Gauge => Cell::Gauge(Arc::default()),
        });
        Some(match cell {
            Cell::Counter(c) => Cell::Counter(c.clone()),
            Cell::Gauge(g) => Cell::Gauge(g.clone()),
        })
    }

    /// Reads one series' current value (tests and health checks).
    pub fn value(&self, name: &str, labels: &[(&'static str, &str)]) -> Option<i128> {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.get(name)?;
        let key: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        family.series.get(&key).map(|c| match c {
            Cell::Counter(c) => c.load(Ordering::Relaxed) as i128,
            Cell::Gauge(g) => g.load(Ordering::Relaxed) as i128,
        })
    }

    /// Renders every family as Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::with_capacity(families.len() * 256);
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            for (labels, cell) in &family.series {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"");
                        escape_label_value(&mut out, v);
                        out.push('"');
                    }
                    out.push('}');
                }
                let _ = match cell {
                    Cell::Counter(c) => writeln!(out, " {}", c.load(Ordering::Relaxed)),
                    Cell::Gauge(g) => writeln!(out, " {}", g.load(Ordering::Relaxed)),
                };
            }
        }
        out
    }
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The per-signal counters one receiver transport owns.
#[derive(Clone, Debug)]
pub struct ReceiverCounters {
    pub accepted: Counter,
    pub refused: Counter,
}

impl ReceiverCounters {
    pub fn new(
        reg: &Registry,
        receiver: &str,
        transport: &str,
        signal: Signal,
    ) -> ReceiverCounters {
        let labels = [("receiver", receiver), ("transport", transport)];
        ReceiverCounters {
            accepted: reg.counter(
                &names::receiver_accepted(signal),
                "Items successfully pushed into the pipeline.",
                &labels,
            ),
            refused: reg.counter(
                &names::receiver_refused(signal),
                "Items that could not be pushed into the pipeline (bad data, overload, failure).",
                &labels,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_and_labels_share_a_cell_and_render_escaped() {
        let reg = Registry::new();
        let a = reg.counter("otelcol_x", "help", &[("receiver", "otlp/a\"b")]);
        let b = reg.counter("otelcol_x", "help", &[("receiver", "otlp/a\"b")]);
        a.add(2);
        b.inc();
        let g = reg.gauge("otelcol_q", "queue", &[]);
        g.set(-4);
        let text = reg.render();
        assert!(text.contains("# TYPE otelcol_x counter\n"), "{text}");
        assert!(
            text.contains("otelcol_x{receiver=\"otlp/a\\\"b\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("otelcol_q -4\n"), "{text}");
        assert_eq!(
            reg.value("otelcol_x", &[("receiver", "otlp/a\"b")]),
            Some(3)
        );
    }

    #[test]
    fn kind_clash_does_not_panic() {
        let reg = Registry::new();
        reg.counter("m", "h", &[]).inc();
        let g = reg.gauge("m", "h", &[]);
        g.set(5);
        assert_eq!(reg.value("m", &[]), Some(1));
    }
}
