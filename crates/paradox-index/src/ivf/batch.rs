//! Many searches at once, grouped by list.
//!
//! Queries are taken in groups (at most [`GROUP`], [`DISK_GROUP`] with codes on disk,
//! fewer when their re-rank pools are large); a group prepares every query's tables once ([`QueryScan`]) and probes it, then
//! fetches each list its queries probe once and scores it for all of them while its codes
//! are at hand (one cache lookup or file read per list and group instead of one per
//! query, and the codes stay in the CPU caches between queries). With codes on disk, the
//! group's lists are all asked for before the first is read, and so are all its re-rank
//! candidates' vector pages. Groups run in parallel.
//!
//! Results equal one-by-one searches', except that among rows at exactly the same
//! distance across lists, which one fills the last place may differ (lists are visited
//! in list order here, nearest first there).

use super::{advise_will_need, as_bytes, rescore, IvfIndex, QueryScan, Residuals};
use crate::{SearchParams, VectorView};
use paradox_kernels::{Neighbor, TopK};
use rayon::prelude::*;

/// Most queries per group: enough for lists to be shared, few enough that the groups
/// spread over the cores.
const GROUP: usize = 64;
/// Most queries per group when the codes are on disk: a group asks for all its lists and
/// re-rank pages at once, and under a tight RAM budget a larger group's pages are evicted
/// before they are used (measured with `paradox bench disk --batch` at a 10 % budget).
pub(super) const DISK_GROUP: usize = 8;
/// Most re-rank pool entries a group holds at once (so a batch with a huge `k × rerank`
/// takes no more memory per group than a few searches of its own).
const GROUP_POOL_ENTRIES: usize = 1 << 16;

impl IvfIndex {
    /// The `k` nearest rows to each of `queries` (`dim` values each, results in query
    /// order), as [`crate::VectorIndex::search`] gives them one by one without a filter.
    /// See the module docs.
    pub fn search_batch(
        &self,
        vectors: VectorView<'_>,
        queries: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Vec<Vec<Neighbor>> {
        let dim = self.dim.max(1);
        let count = queries.len() / dim;
        if k == 0 || self.is_empty() {
            return vec![Vec::new(); count];
        }
        let pool = k.saturating_mul(params.rerank.unwrap_or(self.params.rerank).max(1));
        let most = if self.codes_on_disk() {
            DISK_GROUP
        } else {
            GROUP
        };
        let group = (GROUP_POOL_ENTRIES / pool.max(1)).clamp(1, most);
        queries[..count * dim]
            .par_chunks(group * dim)
            .flat_map_iter(|group| self.search_group(vectors, group, k, params))
            .collect()
    }

    fn search_group(
        &self,
        vectors: VectorView<'_>,
        queries: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Vec<Vec<Neighbor>> {
        let dim = self.dim;
        let nprobe = params.nprobe.unwrap_or(self.params.nprobe);
        // (list, query) pairs, list by list.
        let mut pairs: Vec<(Neighbor, usize)> = self
            .probe_many(queries, nprobe)
            .into_iter()
            .enumerate()
            .flat_map(|(q, lists)| lists.into_iter().map(move |l| (l, q)))
            .collect();
        pairs.sort_unstable_by_key(|(list, q)| (list.key, *q));
        let mut lists: Vec<Neighbor> = pairs.iter().map(|(list, _)| *list).collect();
        lists.dedup_by_key(|list| list.key);
        self.prefetch(&lists);

        let exact = matches!(self.residuals, Residuals::Flat);
        let rerank = params.rerank.unwrap_or(self.params.rerank);
        let plain = exact || rerank == 0;
        let pool_size = if plain { k } else { k.saturating_mul(rerank) };
        let mut pools: Vec<TopK> = (0..queries.len() / dim)
            .map(|_| TopK::new(pool_size))
            .collect();
        let mut scans: Vec<QueryScan> = queries
            .chunks_exact(dim)
            .map(|query| QueryScan::new(self, query, !plain))
            .collect();
        for run in pairs.chunk_by(|a, b| a.0.key == b.0.key) {
            let l = run[0].0.key as usize;
            let Some(codes) = self.list_codes(l) else {
                continue;
            };
            for &(_, q) in run {
                scans[q].list(self, vectors, l, &codes, &|_| true, 0, &mut pools[q]);
            }
        }
        let candidates: Vec<Vec<Neighbor>> = pools.into_iter().map(TopK::into_sorted_vec).collect();
        if plain {
            return candidates;
        }
        if self.codes_on_disk() {
            // Every candidate page of the group at once (see `VectorIndex::search`).
            for candidate in candidates.iter().flatten() {
                advise_will_need(as_bytes(vectors.row(candidate.key as usize)));
            }
        }
        candidates
            .into_iter()
            .zip(queries.chunks_exact(dim))
            .map(|(pool, query)| {
                let mut top = TopK::new(k);
                rescore(self.metric, vectors, query, 0, &pool, &mut top);
                top.into_sorted_vec()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::ivf::{IvfCodec, IvfIndex, IvfParams};
    use crate::testdata::clustered;
    use crate::{SearchParams, VectorIndex, VectorView};
    use paradox_kernels::Metric;

    #[test]
    fn a_batch_finds_what_one_by_one_finds() {
        let dim = 16;
        for metric in [Metric::L2, Metric::Cosine] {
            let mut data = clustered(3000, dim, 20, 31);
            let mut queries = clustered(150, dim, 20, 32);
            if metric.normalizes() {
                for row in data
                    .chunks_exact_mut(dim)
                    .chain(queries.chunks_exact_mut(dim))
                {
                    paradox_kernels::normalize(row);
                }
            }
            let v = VectorView {
                data: &data,
                dim,
                metric,
            };
            for codec in [
                IvfCodec::Flat,
                IvfCodec::Pq { m: 4 },
                IvfCodec::Sq8,
                IvfCodec::OpqPq { m: 4 },
                IvfCodec::Pq4 { m: 8 },
            ] {
                let index = IvfIndex::build(
                    v,
                    IvfParams {
                        nlist: 40,
                        codec,
                        ..Default::default()
                    },
                )
                .unwrap();
                for (nprobe, rerank) in [(1, 4), (6, 0), (40, 8)] {
                    let params = SearchParams {
                        nprobe: Some(nprobe),
                        rerank: Some(rerank),
                        ..Default::default()
                    };
                    let batch = index.search_batch(v, &queries, 7, &params);
                    assert_eq!(batch.len(), 150);
                    for (q, got) in queries.chunks_exact(dim).zip(&batch) {
                        let one = index.search(v, q, 7, None, &params);
                        assert_eq!(got, &one, "{codec:?} {metric:?} nprobe {nprobe}");
                    }
                }
            }
            // No queries, k = 0, a trailing partial vector ignored.
            let index = IvfIndex::build(v, IvfParams::default()).unwrap();
            let p = SearchParams::default();
            assert!(index.search_batch(v, &[], 5, &p).is_empty());
            assert_eq!(index.search_batch(v, &queries[..dim], 0, &p), vec![vec![]]);
            assert_eq!(index.search_batch(v, &queries[..dim + 3], 5, &p).len(), 1);
        }
    }
}
