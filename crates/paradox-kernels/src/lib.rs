//! Distance kernels for Paradox: pure functions over `f32` slices.
//!
//! This crate knows nothing about collections, storage or the network. It answers one
//! question fast: how far apart are these vectors? Every function here is pure and
//! allocation-free in its hot loop.
//!
//! * [`Metric`]: the three metrics Paradox supports and how a raw kernel value becomes a
//!   *distance* (lower is closer) and a user-facing *score*.
//! * Pairwise kernels ([`l2_squared`], [`dot`], [`cosine_similarity`]), one-vs-many
//!   ([`l2_squared_one_to_many`], [`dot_one_to_many`]) and many-vs-many, tiled and
//!   cache-blocked ([`dot_many_to_many`], [`l2_squared_many_to_many`]).
//! * [`TopK`]: bounded selection of the `k` smallest distances.
//! * Exact top-k search built on both: [`scan_topk`] (one query) and [`batch_topk`] (many
//!   queries, through the many-vs-many kernel), block by block into small buffers.
//! * [`matvec`]: one vector through a small dense layer, `W x + b`, with `W` packed once
//!   (`f32`, or `i8` with the input quantised per call): the single-query path of learned
//!   maps between embedding spaces.
//!
//! The SIMD level (AVX-512, AVX2+FMA, NEON or scalar) is detected once, on first use,
//! and the chosen [`KernelTable`] of function pointers is reused for every later call; see
//! [`kernel_table`] and [`simd_level`]. Setting `PARADOX_SIMD=scalar|avx2|avx512` forces a
//! level (ignored if this CPU cannot run it). All kernels are single-threaded: callers
//! parallelise across rows.
//!
//! Codemap: `dispatch` (level detection, [`KernelTable`]), `scalar` (portable fallback),
//! `x86::avx2`, `x86::avx512`, `aarch64` (one module per instruction set, each with its
//! blocking scheme at the top), `gemm` (the shared blocked many-vs-many driver and packing),
//! `search` (top-k scans), `topk`, `quant` (compressed codes), `matvec` (packed
//! matrix-vector products, with their own per-level modules and table).

mod dispatch;
mod gemm;
pub mod matvec;
pub mod quant;
mod scalar;
mod search;
mod topk;

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use dispatch::{
    kernel_table, kernel_table_for, GatherKernel, KernelTable, SimdLevel, SIMD_ENV_VAR,
};
pub use quant::{pq4_block, quant_table, QuantTable, Sq8Quantizer, Sq8Query, Sq8Range, PQ4_BLOCK};
pub use topk::{Neighbor, TopK};

/// How closeness between two vectors is measured.
///
/// Internally every metric is turned into a *distance* where lower is closer:
/// `L2` uses the squared Euclidean distance, `Dot` the negated inner product, and
/// `Cosine` the negated inner product of unit vectors (callers normalise stored vectors and
/// queries once, so cosine costs the same as dot at search time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance.
    L2,
    /// Inner product (higher is closer).
    Dot,
    /// Cosine similarity (higher is closer); vectors are normalised on the way in.
    Cosine,
}

impl Metric {
    /// Stable lowercase name used in configs, file headers and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Dot => "dot",
            Metric::Cosine => "cosine",
        }
    }

    /// Parses `l2`, `euclidean`, `dot`, `ip`, `inner_product` or `cosine` (case-insensitive).
    pub fn parse(name: &str) -> Option<Metric> {
        match name.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Some(Metric::L2),
            "dot" | "ip" | "inner_product" => Some(Metric::Dot),
            "cosine" | "cos" => Some(Metric::Cosine),
            _ => None,
        }
    }

    /// Whether stored vectors and queries must be normalised to unit length.
    pub fn normalizes(self) -> bool {
        matches!(self, Metric::Cosine)
    }

    /// Distance (lower is closer) between two vectors already prepared for this metric.
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2_squared(a, b),
            Metric::Dot | Metric::Cosine => -dot(a, b),
        }
    }

    /// Converts an internal distance into the user-facing score: squared L2 distance for
    /// `L2` (lower is better), similarity for `Dot` and `Cosine` (higher is better).
    #[inline]
    pub fn score_from_distance(self, distance: f32) -> f32 {
        match self {
            Metric::L2 => distance,
            Metric::Dot | Metric::Cosine => -distance,
        }
    }

    /// `out[i]` = the distance from `query` to row `rows[i]` of `data` (rows of
    /// `query.len()` floats), for every slot of `out` up to `rows.len()`: scattered rows,
    /// four at a time (see [`l2_squared_gather`]). Panics if a row lies past `data`.
    pub fn distances_gather(self, query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
        match self {
            Metric::L2 => l2_squared_gather(query, data, rows, out),
            Metric::Dot | Metric::Cosine => {
                dot_gather(query, data, rows, out);
                for d in out.iter_mut().take(rows.len()) {
                    *d = -*d;
                }
            }
        }
    }

    /// Distances from `query` to each row of `rows` (`rows.len() == out.len() * query.len()`).
    pub fn distances_one_to_many(self, query: &[f32], rows: &[f32], out: &mut [f32]) {
        match self {
            Metric::L2 => l2_squared_one_to_many(query, rows, out),
            Metric::Dot | Metric::Cosine => {
                dot_one_to_many(query, rows, out);
                for d in out.iter_mut() {
                    *d = -*d;
                }
            }
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Squared Euclidean distance. Panics in debug builds if lengths differ (in release, the
/// shorter length is used).
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    (kernel_table().l2_squared)(a, b)
}

/// Inner product. Panics in debug builds if lengths differ (in release, the shorter length
/// is used).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    (kernel_table().dot)(a, b)
}

/// Squared norm `‖a‖²`.
#[inline]
pub fn norm_squared(a: &[f32]) -> f32 {
    dot(a, a)
}

/// Cosine similarity of two arbitrary (not necessarily normalised) vectors; 0 if either
/// vector is zero.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    let denom = (norm_squared(a) * norm_squared(b)).sqrt();
    if denom == 0.0 {
        0.0
    } else {
        dot(a, b) / denom
    }
}

/// Scales `v` to unit length in place and returns its original norm. A zero vector is left
/// unchanged (norm 0 is returned) so callers can reject it with a clear error.
pub fn normalize(v: &mut [f32]) -> f32 {
    let norm = norm_squared(v).sqrt();
    if norm > 0.0 {
        let inv = 1.0 / norm;
        for x in v.iter_mut() {
            *x *= inv;
        }
    }
    norm
}

/// `out[i] = ‖query − rows[i]‖²` for each `dim`-sized row of `rows` (`dim = query.len()`).
///
/// The exact-scan hot path: four rows at a time share each query load, and the loop runs at
/// close to memory bandwidth once `rows` is larger than the caches.
pub fn l2_squared_one_to_many(query: &[f32], rows: &[f32], out: &mut [f32]) {
    debug_assert_eq!(rows.len(), out.len() * query.len());
    (kernel_table().l2_squared_one_to_many)(query, rows, out)
}

/// `out[i] = query · rows[i]` for each `dim`-sized row of `rows` (`dim = query.len()`).
pub fn dot_one_to_many(query: &[f32], rows: &[f32], out: &mut [f32]) {
    debug_assert_eq!(rows.len(), out.len() * query.len());
    (kernel_table().dot_one_to_many)(query, rows, out)
}

/// `out[i] = ‖query − data[rows[i]]‖²` for each slot of `out` (up to `rows.len()`), where
/// `data` holds `query.len()`-float rows: the distances to scattered rows, such as those
/// that pass a filter.
///
/// Four rows at a time share each query load, and rows two groups ahead are prefetched
/// (scattered rows miss the caches and the TLB). Panics if a row lies past `data`.
pub fn l2_squared_gather(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    (kernel_table().l2_squared_gather)(query, data, rows, out)
}

/// `out[i] = query · data[rows[i]]`, like [`l2_squared_gather`].
pub fn dot_gather(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    (kernel_table().dot_gather)(query, data, rows, out)
}

/// `out[q * n + i] = queries[q] · rows[i]` for `nq` queries and `n` rows of dimension `dim`,
/// written row-major (`out.len() == nq * n`).
///
/// A tiled, cache-blocked GEMM (packed panels, register-blocked micro-kernel); see the
/// `gemm` module. It is single-threaded: parallelise by splitting `rows` across threads.
pub fn dot_many_to_many(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    (kernel_table().dot_many_to_many)(queries, rows, dim, out)
}

/// `out[q * n + i] = ‖queries[q] − rows[i]‖²`, row-major like [`dot_many_to_many`].
///
/// Computed as `‖q‖² + ‖x‖² − 2 q·x` (clamped at 0) with the same blocked kernel, so for
/// near-identical vectors the absolute error is about `1e-7 · (‖q‖² + ‖x‖²)` rather than
/// relative to the (tiny) distance.
pub fn l2_squared_many_to_many(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    (kernel_table().l2_squared_many_to_many)(queries, rows, dim, out)
}

/// Exact top-k of one query over `rows` (`dim = query.len()`): offers row `i` to `top` with
/// key `row_key_base + i` and distance `‖q − x‖²` (`metric_is_l2`) or `−q·x` (lower is
/// closer). Distances are computed 256 rows at a time into a stack buffer.
///
/// ```
/// use paradox_kernels::{scan_topk, TopK};
/// let rows = [0.0, 0.0, 1.0, 1.0, 5.0, 5.0];
/// let mut top = TopK::new(2);
/// scan_topk(&[1.0, 0.9], &rows, true, 100, &mut top);
/// let keys: Vec<u64> = top.into_sorted_vec().iter().map(|n| n.key).collect();
/// assert_eq!(keys, vec![101, 100]);
/// ```
pub fn scan_topk(
    query: &[f32],
    rows: &[f32],
    metric_is_l2: bool,
    row_key_base: u64,
    top: &mut TopK,
) {
    kernel_table().scan_topk(query, rows, metric_is_l2, row_key_base, top)
}

/// Exact top-k of one query over the rows `rows` of `data` (`query.len()` floats each):
/// offers row `r` with key `row_key_base + r` and the distance of [`scan_topk`]. Distances
/// come from [`l2_squared_gather`] / [`dot_gather`] a block at a time. Panics if a row lies
/// past `data`.
///
/// ```
/// use paradox_kernels::{scan_rows_topk, TopK};
/// let data = [0.0, 0.0, 1.0, 1.0, 5.0, 5.0];
/// let mut top = TopK::new(1);
/// scan_rows_topk(&[4.0, 4.0], &data, &[0, 2], true, 100, &mut top);
/// assert_eq!(top.into_sorted_vec()[0].key, 102);
/// ```
pub fn scan_rows_topk(
    query: &[f32],
    data: &[f32],
    rows: &[u32],
    metric_is_l2: bool,
    row_key_base: u64,
    top: &mut TopK,
) {
    kernel_table().scan_rows_topk(query, data, rows, metric_is_l2, row_key_base, top)
}

/// Exact top-k of many queries over `rows` at once: `tops[q]` receives every row `i` with
/// key `row_key_base + i` and the distance of [`scan_topk`].
///
/// Uses the blocked many-vs-many kernel a row block at a time (about 512 KiB of rows) and a
/// small per-thread scratch tile, never the full `nq × n` matrix. Single-threaded: the
/// engine splits `rows` across threads and merges the selections.
pub fn batch_topk(
    queries: &[f32],
    rows: &[f32],
    dim: usize,
    metric_is_l2: bool,
    row_key_base: u64,
    tops: &mut [TopK],
) {
    kernel_table().batch_topk(queries, rows, dim, metric_is_l2, row_key_base, tops)
}

/// Name of the instruction set the kernels dispatch to on this CPU
/// (`"avx512"`, `"avx2+fma"`, `"neon"` or `"scalar"`), after any `PARADOX_SIMD` override.
pub fn simd_level() -> &'static str {
    kernel_table().level.as_str()
}
