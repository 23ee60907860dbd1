//! HNSW: hierarchical navigable small-world graphs (Malkov & Yashunin, 2016).
//!
//! Each row is a node; every node is on level 0 and, with geometrically falling
//! probability (`1 / ln M` level multiplier), on higher levels. A search descends greedily
//! from the top level's entry point, then runs a beam search of width `ef` on level 0.
//! Links are chosen by the paper's heuristic (algorithm 4), which keeps the graph
//! navigable between clusters.
//!
//! * Build in parallel on the current rayon pool ([`HnswIndex::build`]) or insert rows one
//!   at a time ([`HnswIndex::insert`]).
//! * Delete for real: [`HnswIndex::delete`] tombstones a row (searches stop returning it
//!   at once); [`HnswIndex::repair`] then reconnects the neighbours of every tombstoned node
//!   so none links to a deleted node, as if it had never been there.
//! * Persist with [`HnswIndex::to_bytes`] / [`HnswIndex::from_bytes`] (layout in
//!   `docs/formats.md`).

mod build;
mod graph;
mod persist;
mod search;
#[cfg(test)]
mod tests;
mod visited;

use crate::{Neighbor, RowFilter, SearchParams, VectorIndex, VectorView};
use build::Space;
use graph::{Graph, NONE};
use search::{greedy, search_layer, search_layer_all, Scored, POOL_MAX_NODES};
use std::sync::atomic::Ordering::Acquire;

pub use persist::HnswDecodeError;
pub use search::NodeDistance;

/// Construction and default search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on upper levels (level 0 gets `2 * m`). 4..=64; default 16.
    pub m: usize,
    /// Beam width while building. Default 200.
    pub ef_construction: usize,
    /// Default beam width while searching (raised to `k` when smaller). Default 64.
    pub ef_search: usize,
    /// Seed of the level assignment (builds are reproducible for a given seed and a
    /// single thread).
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            seed: 0x5EED,
        }
    }
}

impl HnswParams {
    /// Checks the ranges; returns a message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=64).contains(&self.m) {
            return Err(format!("hnsw m must be between 2 and 64, got {}", self.m));
        }
        if self.ef_construction == 0 || self.ef_construction > 4096 {
            return Err(format!(
                "hnsw ef_construction must be between 1 and 4096, got {}",
                self.ef_construction
            ));
        }
        if self.ef_search == 0 || self.ef_search > 65_536 {
            return Err(format!(
                "hnsw ef_search must be between 1 and 65536, got {}",
                self.ef_search
            ));
        }
        Ok(())
    }

    /// Level of node `row`: deterministic in (seed, row).
    fn level_of(&self, row: u64) -> u8 {
        // splitmix64 of (seed, row) -> uniform in (0, 1]
        let mut z = self.seed ^ row.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let mult = 1.0 / (self.m as f64).ln();
        ((-u.ln() * mult).floor() as u32).min(16) as u8
    }
}

/// An HNSW graph over the rows of one segment.
#[derive(Debug)]
pub struct HnswIndex {
    params: HnswParams,
    graph: Graph,
    deleted: Vec<u64>,
    deleted_count: usize,
}

impl HnswIndex {
    /// Builds the graph over every row of `vectors`, in parallel on the current rayon
    /// pool.
    pub fn build(vectors: VectorView<'_>, params: HnswParams) -> HnswIndex {
        use rayon::prelude::*;
        let n = vectors.len();
        let levels = (0..n as u64).map(|r| params.level_of(r)).collect();
        let graph = Graph::with_levels(params.m, levels);
        let space = Space::new(vectors);
        if n > 0 {
            build::insert(&graph, &space, 0, params.ef_construction);
            (1..n as u32)
                .into_par_iter()
                .for_each(|q| build::insert(&graph, &space, q, params.ef_construction));
        }
        HnswIndex {
            params,
            graph,
            deleted: Vec::new(),
            deleted_count: 0,
        }
    }

    /// Adds the next row (`vectors.len() - 1` must equal [`HnswIndex::len`]) to the graph.
    pub fn insert(&mut self, vectors: VectorView<'_>) {
        let row = self.graph.len() as u64;
        debug_assert_eq!(vectors.len() as u64, row + 1);
        let node = self.graph.push_node(self.params.level_of(row));
        build::insert(
            &self.graph,
            &Space::new(vectors),
            node,
            self.params.ef_construction,
        );
    }

    /// Nodes in the graph, deleted ones included.
    pub fn len(&self) -> usize {
        self.graph.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.graph.len() == 0
    }

    /// Build parameters.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Tombstones `row`: searches stop returning it at once. Its neighbours are
    /// reconnected by the next [`HnswIndex::repair`].
    pub fn delete(&mut self, row: u32) {
        let (w, b) = (row as usize / 64, row % 64);
        if self.deleted.len() <= w {
            self.deleted.resize(w + 1, 0);
        }
        if self.deleted[w] & (1 << b) == 0 {
            self.deleted[w] |= 1 << b;
            self.deleted_count += 1;
        }
    }

    /// Whether `row` is deleted.
    #[inline]
    pub fn is_deleted(&self, row: u32) -> bool {
        self.deleted
            .get(row as usize / 64)
            .is_some_and(|w| w & (1 << (row % 64)) != 0)
    }

    /// Deleted rows.
    pub fn deleted_count(&self) -> usize {
        self.deleted_count
    }

    /// Reconnects the graph around every deleted row (in parallel): afterwards no live
    /// node links to a deleted one and the entry point is live. Each affected node's
    /// local search uses a beam of `ef_construction`; [`HnswIndex::repair_with`] takes
    /// a smaller one.
    pub fn repair(&mut self, vectors: VectorView<'_>) {
        self.repair_with(vectors, self.params.ef_construction);
    }

    /// [`HnswIndex::repair`] with a beam of `ef` for each affected node's local search
    /// (and for relinking nodes left with few incoming links): with 30 % of the rows
    /// deleted nearly every node is affected, so the beam sets the cost.
    pub fn repair_with(&mut self, vectors: VectorView<'_>, ef: usize) {
        if self.deleted_count == 0 {
            return;
        }
        self.graph.make_owned();
        let deleted = &self.deleted;
        let is_deleted = |r: u32| {
            deleted
                .get(r as usize / 64)
                .is_some_and(|w| w & (1 << (r % 64)) != 0)
        };
        build::repair(&self.graph, &Space::new(vectors), &is_deleted, ef.max(1));
    }

    /// The graph over the rows `keep` selects, renumbered in order (a kept row's new number
    /// is the count of kept rows before it), for a segment rewritten without its deleted
    /// rows. A copy of this graph loses the other rows (and this index's own tombstones)
    /// as [`HnswIndex::repair`] would remove them, with a local beam of `repair_ef`
    /// instead of `ef_construction`, then is rewritten without them. `vectors` are this
    /// graph's rows (the old numbering); this index is only read, so it can keep serving
    /// searches meanwhile.
    ///
    /// Its cost grows with the nodes that linked to dropped ones rather than with all
    /// rows: rewriting a segment this way is several times cheaper than building its graph
    /// anew when a minority of its rows go (see `examples/compaction.rs`).
    pub fn compacted(
        &self,
        vectors: VectorView<'_>,
        keep: &(impl Fn(u32) -> bool + Sync),
        repair_ef: usize,
    ) -> HnswIndex {
        debug_assert_eq!(vectors.len(), self.len());
        let graph = self.graph.deep_copy();
        let dropped = |row: u32| !keep(row) || self.is_deleted(row);
        build::repair(&graph, &Space::new(vectors), &dropped, repair_ef.max(1));
        HnswIndex {
            params: self.params,
            graph: graph.without(&dropped),
            deleted: Vec::new(),
            deleted_count: 0,
        }
    }

    /// Level-0 out-degree of every node (for diagnostics and tests).
    pub fn degrees(&self) -> Vec<usize> {
        (0..self.graph.len() as u32)
            .map(|n| {
                let mut links = [0u32; graph::MAX_LINKS];
                self.graph.read_links(n, 0, &mut links)
            })
            .collect()
    }

    /// Links of `row` at level 0 (for diagnostics and tests).
    pub fn links(&self, row: u32) -> Vec<u32> {
        let mut buf = [0u32; graph::MAX_LINKS];
        let c = self.graph.read_links(row, 0, &mut buf);
        buf[..c].to_vec()
    }
}

impl HnswIndex {
    /// Graph search with a caller-supplied distance (for example over int8 codes instead
    /// of f32 rows): the `ef` nodes closest under `dist` that `accept` admits, closest
    /// first, as `(row, distance)` neighbours. Deleted rows are never returned.
    pub fn search_with(
        &self,
        dist: &impl NodeDistance,
        ef: usize,
        accept: &(impl Fn(u32) -> bool + Sync),
    ) -> Vec<Neighbor> {
        let Some(current) = self.descend(dist, ef) else {
            return Vec::new();
        };
        let has_deletions = self.deleted_count > 0;
        let admit = |n: u32| (!has_deletions || !self.is_deleted(n)) && accept(n);
        let found = visited::with_visited(self.graph.len(), |visited| {
            search_layer(&self.graph, dist, &[current], ef, 0, visited, &admit)
        });
        neighbors(found.into_sorted_vec())
    }

    /// [`HnswIndex::search_with`] without a filter: the `ef` live nodes closest under
    /// `dist`, closest first. Cheaper than passing an `accept` that admits every node: the
    /// beam is one sorted array rather than two heaps.
    pub fn search_all(&self, dist: &impl NodeDistance, ef: usize) -> Vec<Neighbor> {
        if self.deleted_count > 0 || self.graph.len() >= POOL_MAX_NODES {
            return self.search_with(dist, ef, &|_| true);
        }
        let Some(current) = self.descend(dist, ef) else {
            return Vec::new();
        };
        neighbors(visited::with_visited(self.graph.len(), |visited| {
            search_layer_all(&self.graph, dist, &[current], ef, 0, visited)
        }))
    }

    /// The greedy descent from the entry point to level 1's closest node, where the
    /// level-0 beam starts; `None` for an empty graph or `ef` 0.
    fn descend(&self, dist: &impl NodeDistance, ef: usize) -> Option<Scored> {
        let entry = self.graph.entry.load(Acquire);
        if entry == NONE || ef == 0 {
            return None;
        }
        let mut current = Scored {
            distance: dist.distance(entry),
            node: entry,
        };
        for level in (1..=self.graph.max_level.load(Acquire) as usize).rev() {
            current = greedy(&self.graph, dist, current, level);
        }
        Some(current)
    }
}

/// Scored nodes, in order, as neighbours keyed by row.
fn neighbors(sorted: Vec<Scored>) -> Vec<Neighbor> {
    sorted
        .into_iter()
        .map(|s| Neighbor {
            key: s.node as u64,
            distance: s.distance,
        })
        .collect()
}

impl VectorIndex for HnswIndex {
    fn kind(&self) -> &'static str {
        "hnsw"
    }

    fn search(
        &self,
        vectors: VectorView<'_>,
        query: &[f32],
        k: usize,
        filter: Option<RowFilter<'_>>,
        params: &SearchParams,
    ) -> Vec<Neighbor> {
        if k == 0 {
            return Vec::new();
        }
        let ef = params.ef.unwrap_or(self.params.ef_search).max(k);
        let space = Space::new(vectors);
        let dist = space.to(query);
        let mut hits = match filter {
            None => self.search_all(&dist, ef),
            Some(f) => self.search_with(&dist, ef, &f),
        };
        hits.truncate(k);
        hits
    }

    fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes() + self.deleted.capacity() * 8
    }
}
