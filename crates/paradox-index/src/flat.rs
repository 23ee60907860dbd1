//! Exact search by scanning every row: the default for small segments and the oracle that
//! approximate indexes are measured against.

use crate::{Neighbor, RowFilter, SearchParams, TopK, VectorIndex, VectorView};
use paradox_kernels::Metric;

/// Rows scanned per block: distances for a block are computed in one kernel call into a
/// stack buffer, then offered to the top-k selection.
const BLOCK_ROWS: usize = 256;

/// The exact index: holds no state, scans the lent vectors.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatIndex;

impl FlatIndex {
    /// Offers rows `rows.start..rows.end` of `vectors` to `top`, keyed `key_base + row`.
    /// With a filter, only allowed rows enter. This is the unit of parallel work: callers
    /// split a large segment into row ranges and merge the resulting selections.
    pub fn scan_range(
        vectors: VectorView<'_>,
        query: &[f32],
        rows: std::ops::Range<usize>,
        filter: Option<RowFilter<'_>>,
        key_base: u64,
        top: &mut TopK,
    ) {
        let dim = vectors.dim;
        let is_l2 = vectors.metric == Metric::L2;
        let slice = &vectors.data[rows.start * dim..rows.end * dim];
        match filter {
            None => {
                paradox_kernels::scan_topk(query, slice, is_l2, key_base + rows.start as u64, top)
            }
            Some(allow) => {
                let mut distances = [0f32; BLOCK_ROWS];
                let mut start = rows.start;
                while start < rows.end {
                    let end = (start + BLOCK_ROWS).min(rows.end);
                    let block = &vectors.data[start * dim..end * dim];
                    let out = &mut distances[..end - start];
                    vectors.metric.distances_one_to_many(query, block, out);
                    let mut threshold = top.threshold();
                    for (i, &d) in out.iter().enumerate() {
                        let row = start + i;
                        if d <= threshold && allow(row as u32) && top.push(key_base + row as u64, d)
                        {
                            threshold = top.threshold();
                        }
                    }
                    start = end;
                }
            }
        }
    }

    /// Exact top-k for many queries over rows `rows` at once (GEMM-style kernel); one
    /// selection per query in `tops`. Filters are not supported here: filtered batches go
    /// query by query through [`FlatIndex::scan_range`].
    pub fn scan_range_batch(
        vectors: VectorView<'_>,
        queries: &[f32],
        rows: std::ops::Range<usize>,
        key_base: u64,
        tops: &mut [TopK],
    ) {
        let dim = vectors.dim;
        let slice = &vectors.data[rows.start * dim..rows.end * dim];
        paradox_kernels::batch_topk(
            queries,
            slice,
            dim,
            vectors.metric == Metric::L2,
            key_base + rows.start as u64,
            tops,
        );
    }
}

impl FlatIndex {
    /// Offers the listed rows (ascending or not) to `top`, keyed `key_base + row`. The
    /// rows of a filter's matches are scattered, so the kernel prefetches them a few
    /// ahead: the hardware prefetcher cannot guess them.
    pub fn scan_rows(
        vectors: VectorView<'_>,
        query: &[f32],
        rows: &[u32],
        key_base: u64,
        top: &mut TopK,
    ) {
        paradox_kernels::scan_rows_topk(
            query,
            &vectors.data[..vectors.len() * vectors.dim],
            rows,
            vectors.metric == Metric::L2,
            key_base,
            top,
        );
    }
}

impl VectorIndex for FlatIndex {
    fn kind(&self) -> &'static str {
        "flat"
    }

    fn search(
        &self,
        vectors: VectorView<'_>,
        query: &[f32],
        k: usize,
        filter: Option<RowFilter<'_>>,
        _params: &SearchParams,
    ) -> Vec<Neighbor> {
        let mut top = TopK::new(k);
        FlatIndex::scan_range(vectors, query, 0..vectors.len(), filter, 0, &mut top);
        top.into_sorted_vec()
    }

    fn memory_bytes(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(
        vectors: VectorView<'_>,
        q: &[f32],
        k: usize,
        allow: impl Fn(u32) -> bool,
    ) -> Vec<f32> {
        let mut all: Vec<f32> = (0..vectors.len())
            .filter(|&i| allow(i as u32))
            .map(|i| vectors.metric.distance(q, vectors.row(i)))
            .collect();
        all.sort_by(f32::total_cmp);
        all.truncate(k);
        all
    }

    proptest! {
        #[test]
        fn flat_equals_naive_sort(
            dim in 1usize..40,
            n in 0usize..700,
            k in 1usize..50,
            metric in prop_oneof![Just(Metric::L2), Just(Metric::Dot)],
            seed in any::<u64>(),
            modulo in 1u32..5,
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let data: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let view = VectorView { data: &data, dim, metric };
            let allow = move |r: u32| r.is_multiple_of(modulo);
            let got = FlatIndex.search(view, &q, k, Some(&allow), &SearchParams::default());
            let want = naive(view, &q, k, allow);
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((g.distance - w).abs() <= 1e-4 * (1.0 + w.abs()), "{} vs {}", g.distance, w);
                prop_assert!(g.key % modulo as u64 == 0);
            }
            let unfiltered = FlatIndex.search(view, &q, k, None, &SearchParams::default());
            let want_all = naive(view, &q, k, |_| true);
            prop_assert_eq!(unfiltered.len(), want_all.len());
            for (g, w) in unfiltered.iter().zip(&want_all) {
                prop_assert!((g.distance - w).abs() <= 1e-4 * (1.0 + w.abs()));
            }
        }
    }
}
