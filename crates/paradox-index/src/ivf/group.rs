//! Searching several inverted files with the same quantisers as one.
//!
//! A collection's segments are indexed with the quantisers of the last training (see the
//! engine's donor), so most of its inverted files share centroids and codebooks. Searched
//! one by one, each would rank the centroids, make a table per visited list and re-rank
//! its own `rerank × k` candidates: fixed costs that, on the small segments an insert
//! stream seals, outweigh scanning their codes. As a group the probe is paid once
//! ([`IvfIndex::probe_lists`]) and each visited list's table once for every part's copy
//! of that list ([`IvfIndex::scan_group`], which may run on list slices in parallel).
//! Each part keeps its own pool of `rerank × k` candidates, so a group re-ranks
//! ([`IvfIndex::rerank_group`]) exactly the candidates its parts searched one by one
//! would, and returns what they would together.
//!
//! Which indexes may form a group: those with equal [`IvfIndex::quantisers_id`].

use super::{advise_will_need, as_bytes, rescore, IvfIndex, QueryScan, Residuals};
use crate::{RowFilter, SearchParams, VectorView};
use paradox_kernels::{Neighbor, TopK};
use std::hash::{Hash, Hasher};

/// One index of a group: its rows' vectors, the rows it may return, and the base its
/// rows' keys are offset by (`key_base + row`; the bases keep the parts' keys apart).
#[derive(Clone, Copy)]
pub struct GroupPart<'a> {
    pub index: &'a IvfIndex,
    pub vectors: VectorView<'a>,
    pub filter: Option<RowFilter<'a>>,
    pub key_base: u64,
}

impl std::fmt::Debug for GroupPart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupPart")
            .field("rows", &self.vectors.len())
            .field("filtered", &self.filter.is_some())
            .field("key_base", &self.key_base)
            .finish()
    }
}

impl IvfIndex {
    /// A fingerprint of the quantisers (codec, metric, centroids and residual codebooks:
    /// two independent 64-bit hashes): indexes with equal ids file and encode rows alike
    /// and can be searched as a group. Made on first use.
    pub fn quantisers_id(&self) -> [u64; 2] {
        *self.quantisers_id.get_or_init(|| {
            let gain;
            let floats: [&[f32]; 2] = match &self.residuals {
                Residuals::Flat => [&[], &[]],
                Residuals::Pq(pq) => [pq.codebooks(), &[]],
                Residuals::Sq8(sq) => [sq.mins(), sq.scales()],
                Residuals::OpqPq { rotation, pq, .. } => [pq.codebooks(), rotation.transposed()],
                Residuals::Pq4(pq) => {
                    gain = [pq.gain()];
                    [pq.codebooks(), &gain]
                }
            };
            [0x9e37_79b9_7f4a_7c15_u64, 0xc2b2_ae3d_27d4_eb4f].map(|salt| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                salt.hash(&mut hasher);
                format!("{:?} {:?} {}", self.params.codec, self.metric, self.dim).hash(&mut hasher);
                for part in [&self.centroids[..]].into_iter().chain(floats) {
                    part.len().hash(&mut hasher);
                    for &x in part {
                        x.to_bits().hash(&mut hasher);
                    }
                }
                hasher.finish()
            })
        })
    }

    /// The lists a search with `params` visits, nearest first, with the squared L2
    /// distance of `query` to each list's centroid.
    pub fn probe_lists(&self, query: &[f32], params: &SearchParams) -> Vec<Neighbor> {
        if self.rows.is_empty() {
            return Vec::new();
        }
        self.probe(query, params.nprobe.unwrap_or(self.params.nprobe))
    }

    /// The candidates a search keeps for re-ranking (in a group, per part): `rerank × k`,
    /// or `k` when nothing is re-ranked (the codec is exact, or `rerank` is 0).
    pub fn group_pool(&self, k: usize, params: &SearchParams) -> usize {
        match self.rerank_factor(params) {
            0 => k,
            rerank => k.saturating_mul(rerank),
        }
    }

    /// Scores `lists` (from [`Self::probe_lists`] of any part) of every part into that
    /// part's pool (`pools[i]` for `parts[i]`, sized by [`Self::group_pool`]), each list's
    /// table made once for all parts. The parts must have equal
    /// [`Self::quantisers_id`]; `self` is any of them.
    pub fn scan_group(
        &self,
        parts: &[GroupPart<'_>],
        query: &[f32],
        lists: &[Neighbor],
        params: &SearchParams,
        pools: &mut [TopK],
    ) {
        assert_eq!(parts.len(), pools.len(), "one pool per part");
        debug_assert!(parts
            .iter()
            .all(|p| p.index.quantisers_id() == self.quantisers_id()));
        for part in parts {
            part.index.prefetch(lists);
        }
        let reranked = self.rerank_factor(params) > 0;
        let mut scan = QueryScan::new(self, query, reranked);
        for list in lists {
            let l = list.key as usize;
            for (part, pool) in parts.iter().zip(pools.iter_mut()) {
                if let Some(codes) = part.index.list_codes(l) {
                    let allowed = |row: u32| part.filter.is_none_or(|f| f(row));
                    scan.list(
                        part.index,
                        part.vectors,
                        l,
                        &codes,
                        &allowed,
                        part.key_base,
                        pool,
                    );
                }
            }
        }
    }

    /// The best `k` of `candidates` (the parts' pools from [`Self::scan_group`], each cut
    /// to its best [`Self::group_pool`] when made of several), best first: every
    /// candidate re-scored exactly from the parts' vectors when the group's settings
    /// re-rank, else as scored. `parts` must be sorted by `key_base`.
    pub fn rerank_group(
        &self,
        parts: &[GroupPart<'_>],
        query: &[f32],
        candidates: Vec<Neighbor>,
        k: usize,
        params: &SearchParams,
    ) -> Vec<Neighbor> {
        if self.rerank_factor(params) == 0 {
            let mut top = TopK::new(k);
            for candidate in candidates {
                top.push(candidate.key, candidate.distance);
            }
            return top.into_sorted_vec();
        }
        let part_of = |key: u64| {
            let i = parts.partition_point(|p| p.key_base <= key);
            parts[i.saturating_sub(1)]
        };
        if parts.iter().any(|p| p.index.codes_on_disk()) {
            // See `VectorIndex::search`: every candidate's page asked for at once.
            for candidate in &candidates {
                let part = part_of(candidate.key);
                let row = (candidate.key - part.key_base) as usize;
                advise_will_need(as_bytes(part.vectors.row(row)));
            }
        }
        // Part by part (`parts` are sorted by `key_base`), each through the gather kernel.
        let mut candidates = candidates;
        candidates.sort_unstable_by_key(|c| c.key);
        let mut top = TopK::new(k);
        let mut rest = &candidates[..];
        for (i, part) in parts.iter().enumerate() {
            let end = parts.get(i + 1).map_or(u64::MAX, |next| next.key_base);
            let (run, after) = rest.split_at(rest.partition_point(|c| c.key < end));
            rescore(
                self.metric,
                part.vectors,
                query,
                part.key_base,
                run,
                &mut top,
            );
            rest = after;
        }
        top.into_sorted_vec()
    }

    /// The re-rank factor a search with `params` uses: 0 for an exact codec.
    fn rerank_factor(&self, params: &SearchParams) -> usize {
        if matches!(self.residuals, Residuals::Flat) {
            0
        } else {
            params.rerank.unwrap_or(self.params.rerank)
        }
    }
}
