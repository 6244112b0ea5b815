//! Rendering a scrape: Prometheus text format 0.0.4, or OpenMetrics 1.0 (`# UNIT`, `_created`,
//! exemplars with `trace_id` / `span_id` on counters and histogram buckets, `# EOF`).
//! Families come out sorted by name, series sorted by labels, so output is deterministic
//! (the golden files rely on it).

use std::fmt::Write as _;

use super::store::{Exemplar, ExpValue, Family, Hist, Kind, LabelSet, Store, SummaryValue, Value};
use crate::telemetry::metrics::escape_label_value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// An OpenMetrics counter family's name: the counter's name without `_total` (its samples add
/// it back), unless nothing would be left: a counter named `_total` is the family `_total` with
/// the sample `_total_total` (found by the fuzz target `prometheus_names`).
fn counter_family(name: &str) -> &str {
    match name.strip_suffix("_total") {
        Some(base) if !base.is_empty() => base,
        _ => name,
    }
}

/// Writes a sample value without allocating.
fn write_f64(out: &mut String, v: f64, om: bool) {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
        if om {
            out.push_str(".0");
        }
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

fn fmt_f64(v: f64, om: bool) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if om && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// HELP escaping: backslash and newline in text 0.0.4; OpenMetrics also escapes `"`.
fn escape_help(v: &str, om: bool) -> String {
    let s = v.replace('\\', "\\\\").replace('\n', "\\n");
    if om {
        s.replace('"', "\\\"")
    } else {
        s
    }
}

fn series_name(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &LabelSet,
    extra: Option<(&str, &str)>,
) {
    out.push_str(name);
    out.push_str(suffix);
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    out.push_str(labels.as_str());
    if let Some((k, v)) = extra {
        if !labels.is_empty() {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    out.push('}');
}

struct Ctx {
    om: bool,
    timestamps: bool,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    fn sample(
        &self,
        out: &mut String,
        name: &str,
        suffix: &str,
        labels: &LabelSet,
        extra: Option<(&str, &str)>,
        v: f64,
        ts_ns: u64,
        ex: Option<&Exemplar>,
    ) {
        series_name(out, name, suffix, labels, extra);
        out.push(' ');
        write_f64(out, v, self.om);
        if self.timestamps && ts_ns > 0 {
            if self.om {
                let _ = write!(out, " {}", fmt_f64(ts_ns as f64 / 1e9, true));
            } else {
                let _ = write!(out, " {}", ts_ns / 1_000_000);
            }
        }
        if let (true, Some(e)) = (self.om, ex) {
            let _ = write!(
                out,
                " # {{trace_id=\"{}\",span_id=\"{}\"}} {}",
                e.trace_id,
                e.span_id,
                fmt_f64(e.value, true)
            );
            if e.time_ns > 0 {
                let _ = write!(out, " {}", fmt_f64(e.time_ns as f64 / 1e9, true));
            }
        }
        out.push('\n');
    }

    fn created(&self, out: &mut String, name: &str, labels: &LabelSet, start_ns: u64) {
        if self.om && start_ns > 0 {
            series_name(out, name, "_created", labels, None);
            let _ = writeln!(out, " {}", fmt_f64(start_ns as f64 / 1e9, true));
        }
    }

    fn family(&self, out: &mut String, name: &str, fam: &Family) {
        // OpenMetrics names a counter family without `_total`, and `target_info` is an info
        // family named `target`.
        let (fam_name, type_name) = match (self.om, fam.kind) {
            (true, Kind::Counter) => (counter_family(name), "counter"),
            (true, Kind::Info) => (name.strip_suffix("_info").unwrap_or(name), "info"),
            (false, Kind::Info) => (name, "gauge"),
            (_, k) => (name, k.as_str()),
        };
        let _ = writeln!(out, "# TYPE {fam_name} {type_name}");
        if !fam.help.is_empty() {
            let _ = writeln!(out, "# HELP {fam_name} {}", escape_help(&fam.help, self.om));
        }
        if self.om && !fam.unit.is_empty() && fam_name.ends_with(&fam.unit) {
            let _ = writeln!(out, "# UNIT {fam_name} {}", fam.unit);
        }
        for (labels, s) in &fam.series {
            match (&s.value, fam.kind) {
                (Value::Number(v), Kind::Counter) => {
                    // text: the sample is the family name itself; OpenMetrics: family + `_total`
                    let (base, suffix) = if self.om {
                        (counter_family(name), "_total")
                    } else {
                        (name, "")
                    };
                    self.sample(
                        out,
                        base,
                        suffix,
                        labels,
                        None,
                        *v,
                        s.time_ns,
                        s.exemplar.as_deref(),
                    );
                    self.created(out, base, labels, s.start_ns);
                }
                (Value::Number(v), Kind::Info) => {
                    self.sample(
                        out,
                        fam_name,
                        if self.om { "_info" } else { "" },
                        labels,
                        None,
                        *v,
                        0,
                        None,
                    );
                }
                (Value::Number(v), _) => {
                    self.sample(out, name, "", labels, None, *v, s.time_ns, None)
                }
                (Value::Histogram(hist), _) => {
                    let Hist {
                        bounds,
                        counts,
                        sum,
                        count,
                    } = &**hist;
                    let buckets: Vec<(f64, u64)> =
                        bounds.iter().copied().zip(counts.iter().copied()).collect();
                    self.histogram(
                        out,
                        name,
                        labels,
                        &buckets,
                        *sum,
                        *count,
                        s.time_ns,
                        s.start_ns,
                        s.exemplar.as_deref(),
                    );
                }
                (Value::Exponential(e), _) => {
                    let ExpValue { h, sum, count } = &**e;
                    self.histogram(
                        out,
                        name,
                        labels,
                        &h.classic(),
                        *sum,
                        *count,
                        s.time_ns,
                        s.start_ns,
                        s.exemplar.as_deref(),
                    );
                }
                (Value::Summary(summary), _) => {
                    let SummaryValue {
                        quantiles,
                        sum,
                        count,
                    } = &**summary;
                    for (q, v) in quantiles {
                        let qs = fmt_f64(*q, self.om);
                        self.sample(
                            out,
                            name,
                            "",
                            labels,
                            Some(("quantile", &qs)),
                            *v,
                            s.time_ns,
                            None,
                        );
                    }
                    self.sample(out, name, "_sum", labels, None, *sum, s.time_ns, None);
                    self.sample(
                        out,
                        name,
                        "_count",
                        labels,
                        None,
                        *count as f64,
                        s.time_ns,
                        None,
                    );
                    self.created(out, name, labels, s.start_ns);
                }
            }
        }
    }

    /// `buckets` are (upper bound, count in bucket) in ascending order, without +Inf.
    #[allow(clippy::too_many_arguments)]
    fn histogram(
        &self,
        out: &mut String,
        name: &str,
        labels: &LabelSet,
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
        ts: u64,
        start: u64,
        ex: Option<&Exemplar>,
    ) {
        let mut cumulative = 0u64;
        let mut ex_left = ex;
        for (le, c) in buckets {
            cumulative += c;
            let les = fmt_f64(*le, self.om);
            let here = ex_left.filter(|e| e.value <= *le);
            if here.is_some() {
                ex_left = None;
            }
            self.sample(
                out,
                name,
                "_bucket",
                labels,
                Some(("le", &les)),
                cumulative as f64,
                ts,
                here,
            );
        }
        self.sample(
            out,
            name,
            "_bucket",
            labels,
            Some(("le", "+Inf")),
            count as f64,
            ts,
            ex_left,
        );
        if self.om {
            self.sample(out, name, "_count", labels, None, count as f64, ts, None);
            self.sample(out, name, "_sum", labels, None, sum, ts, None);
        } else {
            self.sample(out, name, "_sum", labels, None, sum, ts, None);
            self.sample(out, name, "_count", labels, None, count as f64, ts, None);
        }
        self.created(out, name, labels, start);
    }
}

/// Renders every family of the store.
pub fn render(store: &Store, format: Format, timestamps: bool) -> String {
    let ctx = Ctx {
        om: format == Format::OpenMetrics,
        timestamps,
    };
    let mut names: Vec<String> = store.families.iter().map(|e| e.key().clone()).collect();
    names.sort();
    let mut out = String::with_capacity(store.series_count() * 96 + 64);
    for name in names {
        if let Some(fam) = store.families.get(&name) {
            ctx.family(&mut out, &name, &fam);
        }
    }
    if ctx.om {
        out.push_str("# EOF\n");
    }
    out
}
