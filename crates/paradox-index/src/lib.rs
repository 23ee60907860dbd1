//! Vector indexes for Paradox.
//!
//! An index answers "which rows of this segment are nearest to the query?". It never owns
//! the vectors: a segment owns them (in RAM while growing, memory-mapped once sealed) and
//! lends them to its index for each search, so the same vector bytes serve exact re-rank,
//! flat scans and graph traversal. This crate knows nothing about ids, payloads, files or
//! the network; rows are numbered `0..len` inside one segment.
//!
//! * [`VectorIndex`]: the trait every index implements.
//! * [`FlatIndex`]: exact search by scanning every row (the oracle for every other index).
//! * [`HnswIndex`]: our hierarchical navigable small-world graph.
//! * [`IvfIndex`]: an inverted file over k-means cells, with flat, PQ or SQ8 lists and
//!   exact re-rank; [`kmeans`] and [`ProductQuantizer`] are its building blocks.
//! * [`RowFilter`]: which rows a search may return (payload filters and deletions are
//!   turned into a row predicate by the engine).

mod bytes;
mod encoded;
mod flat;
pub mod hnsw;
pub mod ivf;
pub mod kmeans;
mod opq;
mod pq;
mod pq4;
#[cfg(test)]
mod testdata;

pub use encoded::{
    search_encoded, EncodedDecodeError, EncodedDistance, EncodedVectors, VectorEncoding,
};
pub use flat::FlatIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use ivf::{
    advise_will_need, GroupPart, IvfCodec, IvfDecodeError, IvfFit, IvfIndex, IvfParams, ListCache,
    ListCacheStats,
};
pub use opq::Rotation;
pub use paradox_kernels::{Metric, Neighbor, TopK};
pub use pq::{ProductQuantizer, PQ_CODEWORDS};
pub use pq4::{Pq4Lut, Pq4Quantizer, PQ4_CODEWORDS};

/// Bytes that can back an index's codes or graph links without copying (e.g. a
/// memory-mapped file section); `as_ref` must return the same bytes, at the same address,
/// every time.
pub type SharedBytes = std::sync::Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A predicate over row numbers: `true` means the row may be returned.
pub type RowFilter<'a> = &'a (dyn Fn(u32) -> bool + Sync);

/// Search-time knobs; each index reads the ones it understands and ignores the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SearchParams {
    /// Candidate list size for graph indexes (HNSW `ef`); `None` = the index default.
    pub ef: Option<usize>,
    /// Lists visited by IVF indexes; `None` = the index default.
    pub nprobe: Option<usize>,
    /// Re-rank factor of compressed indexes (`rerank × k` candidates re-scored exactly);
    /// `None` = the index default.
    pub rerank: Option<usize>,
}

/// The rows, dimension and metric a search runs over, lent by the owning segment.
#[derive(Debug, Clone, Copy)]
pub struct VectorView<'a> {
    /// Row-major vectors, `len * dim` values, already prepared for the metric
    /// (unit length for cosine).
    pub data: &'a [f32],
    /// Values per row.
    pub dim: usize,
    /// How distance is measured.
    pub metric: Metric,
}

impl<'a> VectorView<'a> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// An index over the rows of one segment.
///
/// Implementations must be `Send + Sync`: searches run concurrently from many threads.
/// Results use the metric's distance convention (lower is closer) and `Neighbor::key` is
/// the row number.
pub trait VectorIndex: Send + Sync + std::fmt::Debug {
    /// Short stable name (`"flat"`, `"hnsw"`, ...), used in info output and metrics.
    fn kind(&self) -> &'static str;

    /// The `k` nearest allowed rows to `query`, closest first.
    fn search(
        &self,
        vectors: VectorView<'_>,
        query: &[f32],
        k: usize,
        filter: Option<RowFilter<'_>>,
        params: &SearchParams,
    ) -> Vec<Neighbor>;

    /// Bytes of memory the index itself holds (not counting the vectors it is lent).
    fn memory_bytes(&self) -> usize;
}
