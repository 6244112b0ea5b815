//! Exponential histograms kept in their own form: built from an OTLP point, added exactly
//! (downscaling to the coarser scale), and rendered as classic buckets at their own boundaries.

use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;

use super::ExpHist;

/// Downscales an exponential bucket array from `from` to `to` (`to` ≤ `from`).
fn downscale(offset: i32, counts: &[u64], from: i32, to: i32) -> (i32, Vec<u64>) {
    let shift = (from - to).clamp(0, 62) as u32;
    if shift == 0 || counts.is_empty() {
        return (offset, counts.to_vec());
    }
    let new_offset = offset >> shift;
    let last = (offset + counts.len() as i32 - 1) >> shift;
    let mut out = vec![0u64; (last - new_offset + 1) as usize];
    for (i, c) in counts.iter().enumerate() {
        let idx = ((offset + i as i32) >> shift) - new_offset;
        out[idx as usize] += c;
    }
    (new_offset, out)
}

fn add_buckets(a_off: i32, a: &[u64], b_off: i32, b: &[u64]) -> (i32, Vec<u64>) {
    if a.is_empty() {
        return (b_off, b.to_vec());
    }
    if b.is_empty() {
        return (a_off, a.to_vec());
    }
    let lo = a_off.min(b_off);
    let hi = (a_off + a.len() as i32).max(b_off + b.len() as i32);
    let mut out = vec![0u64; (hi - lo) as usize];
    for (i, c) in a.iter().enumerate() {
        out[(a_off - lo) as usize + i] += c;
    }
    for (i, c) in b.iter().enumerate() {
        out[(b_off - lo) as usize + i] += c;
    }
    (lo, out)
}

impl ExpHist {
    pub(super) fn from_point(p: &ExponentialHistogramDataPoint) -> ExpHist {
        let (pos_offset, pos) = p
            .positive
            .as_ref()
            .map(|b| (b.offset, b.bucket_counts.clone()))
            .unwrap_or((0, vec![]));
        let (neg_offset, neg) = p
            .negative
            .as_ref()
            .map(|b| (b.offset, b.bucket_counts.clone()))
            .unwrap_or((0, vec![]));
        ExpHist {
            scale: p.scale,
            zero_count: p.zero_count,
            zero_threshold: p.zero_threshold,
            pos_offset,
            pos,
            neg_offset,
            neg,
        }
    }

    /// Adds `other` to `self`, downscaling both to the coarser scale.
    pub fn add(&mut self, other: &ExpHist) {
        let scale = self.scale.min(other.scale);
        let (po, p) = downscale(self.pos_offset, &self.pos, self.scale, scale);
        let (no, n) = downscale(self.neg_offset, &self.neg, self.scale, scale);
        let (opo, op) = downscale(other.pos_offset, &other.pos, other.scale, scale);
        let (ono, on) = downscale(other.neg_offset, &other.neg, other.scale, scale);
        (self.pos_offset, self.pos) = add_buckets(po, &p, opo, &op);
        (self.neg_offset, self.neg) = add_buckets(no, &n, ono, &on);
        self.scale = scale;
        self.zero_count += other.zero_count;
        self.zero_threshold = self.zero_threshold.max(other.zero_threshold);
    }

    /// Classic buckets: (upper bound, count in that bucket) in ascending order of bound.
    /// Negative bucket `i` covers `[-base^(i+1), -base^i)`: its upper bound is `-base^i`; the zero
    /// bucket's upper bound is `zero_threshold`; positive bucket `i` covers `(base^i, base^(i+1)]`:
    /// its upper bound is `base^(i+1)`. Every count lands in exactly one classic bucket, so
    /// `_count` and every cumulative `le` are exact at these boundaries.
    pub fn classic(&self) -> Vec<(f64, u64)> {
        // base^i computed as 2^(i / 2^scale): exact wherever the exponent is an integer, so
        // boundaries such as 2.0 are not 1.9999999999999996
        let step = 2f64.powi(-self.scale);
        let bound = |i: i32| (i as f64 * step).exp2();
        let mut out = Vec::with_capacity(self.pos.len() + self.neg.len() + 1);
        for (i, c) in self.neg.iter().enumerate().rev() {
            let idx = self.neg_offset + i as i32;
            if *c > 0 {
                out.push((-bound(idx), *c));
            }
        }
        if self.zero_count > 0 || !self.pos.is_empty() || !self.neg.is_empty() {
            out.push((self.zero_threshold, self.zero_count));
        }
        for (i, c) in self.pos.iter().enumerate() {
            let idx = self.pos_offset + i as i32;
            if *c > 0 {
                out.push((bound(idx + 1), *c));
            }
        }
        out
    }
}
