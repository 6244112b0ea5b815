//! Exponential histograms kept in their own form: built from an OTLP point, added exactly
//! (downscaling to the coarser scale), and rendered as classic buckets at their own boundaries.

use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;

use super::ExpHist;

/// Most buckets an added-up histogram keeps on each side: past it, both are downscaled further
/// (wider buckets, same counts), so two points with far-apart offsets cannot make a huge array.
const MAX_BUCKETS: i64 = 4096;

/// Downscales an exponential bucket array from `from` to `to` (`to` ≤ `from`).
fn downscale(offset: i32, counts: &[u64], from: i32, to: i32) -> (i32, Vec<u64>) {
    let shift = (i64::from(from) - i64::from(to)).clamp(0, 62) as u32;
    if shift == 0 || counts.is_empty() {
        return (offset, counts.to_vec());
    }
    let new_offset = i64::from(offset) >> shift;
    let last = (i64::from(offset) + counts.len() as i64 - 1) >> shift;
    let mut out = vec![0u64; (last - new_offset + 1).max(0) as usize];
    for (i, c) in counts.iter().enumerate() {
        let idx = ((i64::from(offset) + i as i64) >> shift) - new_offset;
        if let Some(slot) = out.get_mut(idx as usize) {
            *slot = slot.saturating_add(*c);
        }
    }
    (new_offset as i32, out)
}

/// How many buckets adding the two arrays would take.
fn span(a_off: i32, a: &[u64], b_off: i32, b: &[u64]) -> i64 {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.len() as i64,
        (_, true) => a.len() as i64,
        _ => {
            let lo = i64::from(a_off).min(i64::from(b_off));
            let hi = (i64::from(a_off) + a.len() as i64).max(i64::from(b_off) + b.len() as i64);
            hi - lo
        }
    }
}

fn add_buckets(a_off: i32, a: &[u64], b_off: i32, b: &[u64]) -> (i32, Vec<u64>) {
    if a.is_empty() {
        return (b_off, b.to_vec());
    }
    if b.is_empty() {
        return (a_off, a.to_vec());
    }
    let lo = a_off.min(b_off);
    let mut out = vec![0u64; span(a_off, a, b_off, b).max(0) as usize];
    for (off, counts) in [(a_off, a), (b_off, b)] {
        let base = (i64::from(off) - i64::from(lo)) as usize;
        for (i, c) in counts.iter().enumerate() {
            if let Some(slot) = out.get_mut(base + i) {
                *slot = slot.saturating_add(*c);
            }
        }
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

    /// Adds `other` to `self`, downscaling both to the coarser scale (and further while the
    /// sum would hold more than `MAX_BUCKETS` buckets on a side).
    pub fn add(&mut self, other: &ExpHist) {
        let mut scale = self.scale.min(other.scale);
        // 64 steps collapse any i32 offsets into two buckets: the loop always ends
        for _ in 0..64 {
            let (po, p) = downscale(self.pos_offset, &self.pos, self.scale, scale);
            let (no, n) = downscale(self.neg_offset, &self.neg, self.scale, scale);
            let (opo, op) = downscale(other.pos_offset, &other.pos, other.scale, scale);
            let (ono, on) = downscale(other.neg_offset, &other.neg, other.scale, scale);
            if span(po, &p, opo, &op) <= MAX_BUCKETS && span(no, &n, ono, &on) <= MAX_BUCKETS {
                (self.pos_offset, self.pos) = add_buckets(po, &p, opo, &op);
                (self.neg_offset, self.neg) = add_buckets(no, &n, ono, &on);
                self.scale = scale;
                break;
            }
            scale = scale.saturating_sub(1);
        }
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn h(scale: i32, pos_offset: i32, pos: Vec<u64>) -> ExpHist {
        ExpHist {
            scale,
            zero_count: 0,
            zero_threshold: 0.0,
            pos_offset,
            pos,
            neg_offset: 0,
            neg: vec![],
        }
    }

    #[test]
    fn far_apart_offsets_downscale_instead_of_allocating_or_overflowing() {
        let mut a = h(0, -2_000_000_000, vec![1, 2]);
        a.add(&h(0, 2_000_000_000, vec![3]));
        assert!(a.pos.len() as i64 <= MAX_BUCKETS, "{}", a.pos.len());
        assert_eq!(a.pos.iter().sum::<u64>(), 6, "no count lost");
        let mut b = h(3, 0, vec![u64::MAX]);
        b.add(&h(3, 0, vec![5]));
        assert_eq!(b.pos, vec![u64::MAX], "saturates, never wraps");
        // near offsets keep the finer common scale
        let mut c = h(2, 4, vec![1, 1]);
        c.add(&h(2, 5, vec![1]));
        assert_eq!((c.scale, c.pos_offset, c.pos.clone()), (2, 4, vec![1, 2]));
    }
}
