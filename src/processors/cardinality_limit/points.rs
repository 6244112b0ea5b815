//! What the processor needs from each OTLP data point type ([`Pt`]): attributes, the time
//! window, merging two points of one series (delta: add; gauge: latest) and, for sums and
//! explicit histograms, a cumulative view for the overflow side table.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    number_data_point, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
    SummaryDataPoint,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    DeltaSum,
    CumSum,
    Gauge,
    DeltaHist,
    CumHist,
    /// Exponential histograms and summaries: cannot be folded or merged exactly.
    Unfoldable,
}

/// The fields every OTLP data point type has.
macro_rules! accessors {
    () => {
        fn attrs(&self) -> &[KeyValue] {
            &self.attributes
        }
        fn attrs_mut(&mut self) -> &mut Vec<KeyValue> {
            &mut self.attributes
        }
        fn start(&self) -> u64 {
            self.start_time_unix_nano
        }
        fn time(&self) -> u64 {
            self.time_unix_nano
        }
    };
    (mergeable) => {
        accessors!();
        fn absorb_window(&mut self, o: &Self) {
            (self.start_time_unix_nano, self.time_unix_nano) = widen(
                self.start_time_unix_nano,
                self.time_unix_nano,
                o.start_time_unix_nano,
                o.time_unix_nano,
            );
            self.exemplars.clear();
        }
    };
}

/// What the processor needs from each data point type.
pub(super) trait Pt: Clone {
    fn attrs(&self) -> &[KeyValue];
    fn attrs_mut(&mut self) -> &mut Vec<KeyValue>;
    fn start(&self) -> u64;
    fn time(&self) -> u64;
    /// After a delta merge: the window covering both (earliest start, latest time); the
    /// exemplars no longer describe the sum.
    fn absorb_window(&mut self, _o: &Self) {}
    /// Merges `o` into `self` as `kind` does (delta: add; gauge: latest); false if it cannot.
    fn merge(&mut self, _o: &Self, _kind: Kind) -> bool {
        false
    }
    fn cum(&self) -> Option<Cum> {
        None
    }
    /// Writes a folded cumulative value and its window.
    fn set_cum(&mut self, _c: &Cum, _start: u64, _time: u64) {}
}

pub(super) fn as_f64(v: &Option<number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => 0.0,
    }
}

/// The window covering two delta windows: earliest start, latest time.
fn widen(start: u64, time: u64, o_start: u64, o_time: u64) -> (u64, u64) {
    let start = if o_start != 0 && (start == 0 || o_start < start) {
        o_start
    } else {
        start
    };
    (start, time.max(o_time))
}

impl Pt for NumberDataPoint {
    accessors!(mergeable);
    fn merge(&mut self, o: &Self, kind: Kind) -> bool {
        match kind {
            Kind::Gauge | Kind::CumSum => {
                if o.time_unix_nano >= self.time_unix_nano {
                    let attrs = std::mem::take(&mut self.attributes);
                    *self = o.clone();
                    self.attributes = attrs;
                }
                true
            }
            Kind::DeltaSum => {
                use number_data_point::Value as V;
                self.value = Some(match (&self.value, &o.value) {
                    (Some(V::AsInt(a)), Some(V::AsInt(b))) => V::AsInt(a.saturating_add(*b)),
                    (a, b) => V::AsDouble(as_f64(a) + as_f64(b)),
                });
                self.absorb_window(o);
                true
            }
            _ => false,
        }
    }
    fn cum(&self) -> Option<Cum> {
        Some(Cum::Sum(as_f64(&self.value)))
    }
    fn set_cum(&mut self, c: &Cum, start: u64, time: u64) {
        if let Cum::Sum(v) = c {
            self.value = Some(number_data_point::Value::AsDouble(*v));
        }
        self.start_time_unix_nano = start;
        self.time_unix_nano = time;
        self.exemplars.clear();
    }
}

impl Pt for HistogramDataPoint {
    accessors!(mergeable);
    fn merge(&mut self, o: &Self, kind: Kind) -> bool {
        if kind != Kind::DeltaHist
            || self.explicit_bounds != o.explicit_bounds
            || self.bucket_counts.len() != o.bucket_counts.len()
        {
            return false;
        }
        for (a, b) in self.bucket_counts.iter_mut().zip(&o.bucket_counts) {
            *a += b;
        }
        self.count += o.count;
        self.sum = match (self.sum, o.sum) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        self.max = match (self.max, o.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        self.absorb_window(o);
        true
    }
    fn cum(&self) -> Option<Cum> {
        Some(Cum::Hist(HistCum {
            bounds: self.explicit_bounds.clone(),
            counts: self.bucket_counts.clone(),
            count: self.count,
            sum: self.sum.unwrap_or(0.0),
        }))
    }
    fn set_cum(&mut self, c: &Cum, start: u64, time: u64) {
        self.start_time_unix_nano = start;
        self.time_unix_nano = time;
        if let Cum::Hist(h) = c {
            self.explicit_bounds = h.bounds.clone();
            self.bucket_counts = h.counts.clone();
            self.count = h.count;
            self.sum = Some(h.sum);
            self.min = None;
            self.max = None;
        }
        self.exemplars.clear();
    }
}

impl Pt for ExponentialHistogramDataPoint {
    accessors!();
}

impl Pt for SummaryDataPoint {
    accessors!();
}

/// A cumulative value as the side table keeps it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cum {
    Sum(f64),
    Hist(HistCum),
}

/// A cumulative explicit-bucket histogram.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HistCum {
    pub(super) bounds: Vec<f64>,
    pub(super) counts: Vec<u64>,
    pub(super) count: u64,
    pub(super) sum: f64,
}

impl HistCum {
    fn same_layout(&self, o: &HistCum) -> bool {
        self.bounds == o.bounds && self.counts.len() == o.counts.len()
    }
}

impl Cum {
    /// `self − prev`, or `None` when `self` is not a continuation (a reset or a new layout).
    pub(super) fn minus(&self, prev: &Cum) -> Option<Cum> {
        match (self, prev) {
            (Cum::Sum(a), Cum::Sum(b)) if a >= b => Some(Cum::Sum(a - b)),
            (Cum::Hist(a), Cum::Hist(b))
                if a.same_layout(b)
                    && a.count >= b.count
                    && a.counts.iter().zip(&b.counts).all(|(x, y)| x >= y) =>
            {
                Some(Cum::Hist(HistCum {
                    bounds: a.bounds.clone(),
                    counts: a.counts.iter().zip(&b.counts).map(|(x, y)| x - y).collect(),
                    count: a.count - b.count,
                    sum: a.sum - b.sum,
                }))
            }
            _ => None,
        }
    }

    /// Adds `d` in place; false when the layouts differ.
    pub(super) fn add(&mut self, d: &Cum) -> bool {
        match (self, d) {
            (Cum::Sum(a), Cum::Sum(b)) => *a += b,
            (Cum::Hist(a), Cum::Hist(b)) if a.same_layout(b) => {
                for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                    *x += y;
                }
                a.count += b.count;
                a.sum += b.sum;
            }
            _ => return false,
        }
        true
    }

    /// Zero with the same layout.
    pub(super) fn zero_like(&self) -> Cum {
        match self {
            Cum::Sum(_) => Cum::Sum(0.0),
            Cum::Hist(h) => Cum::Hist(HistCum {
                bounds: h.bounds.clone(),
                counts: vec![0; h.counts.len()],
                count: 0,
                sum: 0.0,
            }),
        }
    }
}
