//! Bounded top-k selection: keeps the `k` smallest distances seen so far.

use std::cmp::Ordering;

/// One candidate: an opaque key chosen by the caller and its distance (lower is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// Caller-defined key (row number, packed segment/row, point handle...).
    pub key: u64,
    /// Distance under the metric's convention (lower is closer).
    pub distance: f32,
}

impl Eq for Neighbor {}

impl PartialOrd for Neighbor {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Neighbor {
    /// Total order by distance then key, so results are deterministic. NaN never enters
    /// (callers reject NaN input), but `total_cmp` keeps the order total regardless.
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.key.cmp(&other.key))
    }
}

/// Distances tested at once by the pre-filter of [`TopK::push_block`].
const PREFILTER_LANES: usize = 16;

/// Whether any of `chunk` is `<= threshold` (NaN never is), without early exit so that it
/// compiles to packed compares and one mask test.
#[inline]
fn any_at_most(chunk: &[f32; PREFILTER_LANES], threshold: f32) -> bool {
    chunk.iter().fold(false, |any, &d| any | (d <= threshold))
}

/// Extra room a selection keeps beyond `k` (see [`TopK`]), so that small selections do not
/// compact after every few entries.
const SLACK: usize = 8;

/// Keeps the `k` candidates with the smallest distance.
///
/// A reservoir rather than a heap: a candidate at or under [`TopK::threshold`] is
/// appended, and once `2k + 8` are held the best `k` are selected in linear time
/// (`select_nth_unstable`) and the threshold drops to the `k`-th distance. An entry costs
/// a compare and a store, where a heap of the same size sifts through `log₂ k` levels of
/// unpredictable branches: with the `k × rerank` pools of an IVF search (80 and more)
/// heap sifts were a fifth of a query's time. The threshold is therefore an upper bound
/// of the `k`-th distance offered so far (exact when the first `k` are held and after
/// each compaction), never below it, so nothing that belongs in the result is turned
/// away; [`TopK::into_sorted_vec`] gives the exact best `k` by distance then key.
///
/// ```
/// use paradox_kernels::TopK;
/// let mut top = TopK::new(2);
/// for (key, d) in [(1, 0.5), (2, 0.1), (3, 0.9), (4, 0.2)] {
///     top.push(key, d);
/// }
/// let keys: Vec<u64> = top.into_sorted_vec().iter().map(|n| n.key).collect();
/// assert_eq!(keys, vec![2, 4]);
/// ```
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    items: Vec<Neighbor>,
    /// Every held candidate beyond the best `k` is above it or tied with the `k`-th.
    threshold: f32,
}

impl TopK {
    /// An empty selection of capacity `k` (k = 0 keeps nothing).
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(Self::room(k).min(1 << 20)),
            threshold: f32::INFINITY,
        }
    }

    /// Candidates held before a compaction.
    fn room(k: usize) -> usize {
        k.saturating_mul(2).saturating_add(SLACK)
    }

    /// The distance a new candidate must not exceed to enter: infinity until `k` are
    /// held, then an upper bound of the `k`-th smallest distance offered (see the type).
    #[inline]
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Offers a candidate; returns whether it was kept for now (a NaN distance never is).
    #[inline]
    pub fn push(&mut self, key: u64, distance: f32) -> bool {
        if self.k == 0 || distance.is_nan() || distance > self.threshold {
            return false;
        }
        self.items.push(Neighbor { key, distance });
        if self.items.len() == self.k && self.threshold == f32::INFINITY {
            self.threshold = self
                .items
                .iter()
                .map(|n| n.distance)
                .fold(f32::NEG_INFINITY, f32::max);
        } else if self.items.len() >= Self::room(self.k) {
            self.compact();
        }
        true
    }

    /// Keeps the best `k` and lowers the threshold to the `k`-th distance.
    fn compact(&mut self) {
        if self.items.len() <= self.k {
            return;
        }
        let (_, kth, _) = self.items.select_nth_unstable(self.k - 1);
        self.threshold = kth.distance;
        self.items.truncate(self.k);
    }

    /// Offers `distances[i]` with key `base_key + i` for each `i`, skipping quickly those
    /// that cannot enter.
    ///
    /// This is on the hot path of exact search (every candidate passes through it), so
    /// distances are tested against the threshold sixteen at a time with a branch-free
    /// comparison the compiler turns into packed compares; only a chunk holding a possible
    /// entrant goes through [`TopK::push`] one by one.
    #[inline]
    pub fn push_block(&mut self, base_key: u64, distances: &[f32]) {
        if self.k == 0 {
            return;
        }
        let mut threshold = self.threshold();
        let (chunks, tail) = distances.as_chunks::<PREFILTER_LANES>();
        let tail_start = distances.len() - tail.len();
        for (c, chunk) in chunks.iter().enumerate() {
            if any_at_most(chunk, threshold) {
                let key = base_key + (c * PREFILTER_LANES) as u64;
                self.push_each(key, chunk, &mut threshold);
            }
        }
        let key = base_key + tail_start as u64;
        self.push_each(key, tail, &mut threshold);
    }

    /// Offers `distances[i]` with key `base_key + rows[i]` for each `i`, with the quick
    /// rejection of [`TopK::push_block`].
    #[inline]
    pub fn push_block_rows(&mut self, base_key: u64, rows: &[u32], distances: &[f32]) {
        if self.k == 0 {
            return;
        }
        let mut threshold = self.threshold();
        let (chunks, _) = distances.as_chunks::<PREFILTER_LANES>();
        let mut start = 0;
        for chunk in chunks {
            if any_at_most(chunk, threshold) {
                self.push_rows(base_key, &rows[start..], chunk, &mut threshold);
            }
            start += PREFILTER_LANES;
        }
        self.push_rows(
            base_key,
            &rows[start..],
            &distances[start..],
            &mut threshold,
        );
    }

    #[inline]
    fn push_rows(&mut self, base_key: u64, rows: &[u32], distances: &[f32], threshold: &mut f32) {
        for (&row, &d) in rows.iter().zip(distances) {
            if d <= *threshold && self.push(base_key + row as u64, d) {
                *threshold = self.threshold();
            }
        }
    }

    /// The scalar loop behind [`TopK::push_block`].
    #[inline]
    fn push_each(&mut self, base_key: u64, distances: &[f32], threshold: &mut f32) {
        for (i, &d) in distances.iter().enumerate() {
            if d <= *threshold && self.push(base_key + i as u64, d) {
                *threshold = self.threshold();
            }
        }
    }

    /// Number of candidates [`TopK::into_sorted_vec`] would give (at most `k`).
    pub fn len(&self) -> usize {
        self.items.len().min(self.k)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Capacity `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Merges another selection into this one.
    pub fn merge(&mut self, other: TopK) {
        for n in other.items {
            self.push(n.key, n.distance);
        }
    }

    /// The best `k` held, closest first.
    pub fn into_sorted_vec(mut self) -> Vec<Neighbor> {
        self.compact();
        self.items.sort_unstable();
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Offers candidates one by one: the reference `push_block` must match exactly.
    fn push_one_by_one(top: &mut TopK, base_key: u64, distances: &[f32]) {
        for (i, &d) in distances.iter().enumerate() {
            if d <= top.threshold() {
                top.push(base_key + i as u64, d);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn push_block_keeps_the_k_smallest(
            k in 0usize..24,
            // Few distinct values, so ties between keys are common.
            blocks in prop::collection::vec(prop::collection::vec(0u8..12, 0..70), 0..6),
        ) {
            let mut by_block = TopK::new(k);
            let mut by_one = TopK::new(k);
            let mut all = Vec::new();
            // Descending key ranges: later candidates may win ties on the key.
            let mut key = 100_000u64;
            for block in &blocks {
                let distances: Vec<f32> = block.iter().map(|&v| v as f32 * 0.5 - 1.0).collect();
                by_block.push_block(key, &distances);
                push_one_by_one(&mut by_one, key, &distances);
                all.extend(distances.iter().enumerate().map(|(i, &distance)| Neighbor {
                    key: key + i as u64,
                    distance,
                }));
                key -= 1000;
                prop_assert!(by_block.len() <= k);
            }
            all.sort();
            all.truncate(k);
            let (block_sorted, one_sorted) = (by_block.into_sorted_vec(), by_one.into_sorted_vec());
            prop_assert_eq!(&block_sorted, &all);
            prop_assert_eq!(&one_sorted, &all);
        }
    }

    #[test]
    fn threshold_is_infinite_until_full_then_bounds_the_kth_from_above() {
        let mut top = TopK::new(2);
        assert_eq!(top.threshold(), f32::INFINITY);
        top.push(1, 3.0);
        assert_eq!(top.threshold(), f32::INFINITY);
        top.push(2, 1.0);
        assert_eq!(top.threshold(), 3.0);
        assert!(top.push(3, 2.0));
        assert!(!top.push(4, 5.0));
        assert!(!top.push(5, f32::NAN));
        // Still the bound of the first two until the room (2k + SLACK) is full.
        assert_eq!(top.threshold(), 3.0);
        assert_eq!(top.len(), 2);
        for key in 0..(TopK::room(2) - 3) as u64 {
            top.push(10 + key, 2.5);
        }
        // Compacted: the exact second distance.
        assert_eq!(top.threshold(), 2.0);
        let keys: Vec<u64> = top.into_sorted_vec().iter().map(|n| n.key).collect();
        assert_eq!(keys, vec![2, 3]);
    }

    #[test]
    fn ties_keep_the_smaller_key_and_nan_never_enters_a_block() {
        let mut top = TopK::new(2);
        let mut block = vec![f32::NAN; 40];
        block[17] = 1.0;
        block[33] = 1.0;
        block[5] = 1.0;
        top.push_block(10, &block);
        let got = top.into_sorted_vec();
        assert_eq!(got.iter().map(|n| n.key).collect::<Vec<_>>(), vec![15, 27]);
        assert!(got.iter().all(|n| n.distance == 1.0));
    }

    #[test]
    fn zero_capacity_keeps_nothing_and_merge_combines() {
        let mut none = TopK::new(0);
        none.push_block(0, &[1.0, 2.0]);
        assert!(!none.push(1, 0.0));
        assert!(none.is_empty());

        let mut a = TopK::new(3);
        a.push_block(0, &[5.0, 1.0, 4.0]);
        let mut b = TopK::new(3);
        b.push_block(10, &[2.0, 6.0, 0.5]);
        a.merge(b);
        let keys: Vec<u64> = a.into_sorted_vec().iter().map(|n| n.key).collect();
        assert_eq!(keys, vec![12, 1, 10]);
    }
}
